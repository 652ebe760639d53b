/** All tables, for Drizzle's relational typing; a new service adds its module here. */
export * from './account_tokens.js';
export * from './login_failures.js';
export * from './mail.js';
export * from './movies.js';
export * from './sessions.js';
export * from './users.js';
