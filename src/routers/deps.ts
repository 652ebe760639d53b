/** Route dependencies: the bearer token check and the scopes a route requires. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BEARER_SCHEME, OAUTH2_SCHEME, type Scope } from '../const.js';
import type { Principal } from '../schemas/auth.js';
import type { AuthService } from '../services/auth.js';
import { isScope } from '../services/scopes.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the bearer hook on protected routes. */
    principal: Principal | undefined;
  }
}

/**
 * OpenAPI: the route needs a bearer token carrying these scopes, from either scheme (a list of
 * alternatives): the password flow's, or any bearer token pasted in (a personal access token, a
 * trusted issuer's), which OpenAPI gives no scopes. Every protected route, generated services'
 * (routers/resource.ts) too, describes its security with this.
 */
export function bearerSecurity(...scopes: Scope[]): Record<string, Scope[]>[] {
  return [{ [OAUTH2_SCHEME]: scopes }, { [BEARER_SCHEME]: [] }];
}

/**
 * An onRequest hook that admits only requests with a valid bearer token carrying every one of
 * `scopes` (FastAPI's Security dependency). Without a valid token: 401; lacking a scope: 403.
 * The check is synchronous while the token's session state is fresh in memory.
 */
export function requireScopes(auth: AuthService, ...scopes: Scope[]) {
  // A scope no service declares could never be granted: a typo must stop the start, not lock out.
  const unknown = scopes.filter((scope) => !isScope(scope));
  if (unknown.length > 0)
    throw new Error(`unknown scope ${unknown.join(' ')}: no service declares it`);
  return function bearerHook(
    request: FastifyRequest,
    _reply: FastifyReply,
    done: (error?: Error) => void,
  ): void {
    const principal = auth.authenticate(request.headers.authorization, scopes);
    if (principal instanceof Promise) {
      principal.then((checked) => {
        request.principal = checked;
        done();
      }, done);
      return;
    }
    request.principal = principal;
    done();
  };
}

/** The principal a protected route's hook admitted. */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === undefined) throw new Error('route is missing its requireScopes hook');
  return request.principal;
}

/**
 * The next page as a `Link: <...>; rel="next"` header: this request's URL with `params` set
 * (the cursor, say), or nothing on the last page.
 */
export function linkNextPage(
  reply: FastifyReply,
  url: string,
  params: Record<string, string> | undefined,
): void {
  if (params === undefined) return;
  const next = new URL(url, 'http://localhost');
  for (const [name, value] of Object.entries(params)) next.searchParams.set(name, value);
  void reply.header('link', `<${next.pathname}${next.search}>; rel="next"`);
}
