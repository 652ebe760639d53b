import { authRouter } from './auth.js';
import { moviesRouter } from './movies.js';

/** The service routers, registered in this order; a new service adds its router here. */
export const serviceRouters = [authRouter, moviesRouter];
export { healthRouter } from './health.js';
