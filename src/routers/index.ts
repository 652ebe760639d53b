/** The routers the application registers, one per service. */
import { accessTokensRouter } from './access_tokens.js';
import { authRouter } from './auth.js';
import { healthRouter } from './health.js';
import { introspectionRouter } from './introspection.js';
import { moviesRouter } from './movies.js';
import { usersRouter } from './users.js';

/** The routers, registered in this order; a new service adds its router here. */
export const routers = [
  healthRouter,
  authRouter,
  moviesRouter,
  usersRouter,
  accessTokensRouter,
  introspectionRouter,
];
