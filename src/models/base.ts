/** The PostgreSQL schema that holds every table of myapi. */
import { pgSchema } from 'drizzle-orm/pg-core';

/** Every table of the application lives in this PostgreSQL schema, as in the tutorial. */
export const myapiSchema = pgSchema('myapi');
