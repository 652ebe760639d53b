/** All tables, for Drizzle's relational typing; a new service adds its module here. */
export * from './movies.js';
export * from './users.js';
