/** All tables, for Drizzle's relational typing; a new service adds its module here. */
export * from './login_failures.js';
export * from './movies.js';
export * from './sessions.js';
export * from './users.js';
export * from './signing_keys.js';
