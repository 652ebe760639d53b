import type { FastifyReply, FastifyRequest } from 'fastify';
import { OAUTH2_SCHEME } from '../const.js';
import type { Principal } from '../schemas/auth.js';
import type { AuthService } from '../services/auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the bearer hook on protected routes. */
    principal: Principal | undefined;
  }
}

/** OpenAPI: the route needs a bearer token from the password flow. */
export const BEARER_SECURITY = [{ [OAUTH2_SCHEME]: [] }];

/** An onRequest hook that admits only requests with a valid bearer token (FastAPI's Depends). */
export function requireBearer(auth: AuthService) {
  return function bearerHook(
    request: FastifyRequest,
    _reply: FastifyReply,
    done: () => void,
  ): void {
    request.principal = auth.authenticate(request.headers.authorization);
    done();
  };
}
