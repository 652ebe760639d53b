import { defineConfig } from 'drizzle-kit';

// drizzle-kit only generates the SQL files in drizzle/; `myapi migrate` applies them.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/models/*.ts',
  out: './drizzle',
  schemaFilter: ['myapi'],
});
