import { integer, numeric, text } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';

export const movies = myapiSchema.table('movies', {
  movie_id: integer('movie_id').primaryKey(),
  title: text('title').notNull(),
  released: integer('released').notNull(),
  // Both drivers return NUMERIC as a string; mode 'number' makes it the JSON number clients expect.
  rating: numeric('rating', { precision: 2, scale: 1, mode: 'number' }).notNull(),
});
