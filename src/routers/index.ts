/** The routers the application registers, one per service. */
import { auditRouter } from './audit.js';
import { authRouter } from './auth.js';
import { healthRouter } from './health.js';
import { mfaRouter } from './mfa.js';
import { moviesRouter } from './movies.js';
import { userSessionsRouter } from './user_sessions.js';
import { usersRouter } from './users.js';

/** The routers, registered in this order; a new service adds its router here. */
export const routers = [
  healthRouter,
  authRouter,
  moviesRouter,
  usersRouter,
  userSessionsRouter,
  mfaRouter,
  auditRouter,
];
