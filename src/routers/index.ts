/** The routers the application registers, one per service. */
import { accountsRouter } from './accounts.js';
import { authRouter } from './auth.js';
import { healthRouter } from './health.js';
import { moviesRouter } from './movies.js';
import { usersRouter } from './users.js';

/** The routers, registered in this order; a new service adds its router here. */
export const routers = [healthRouter, authRouter, moviesRouter, usersRouter, accountsRouter];
