import { defineConfig } from 'drizzle-kit';

// drizzle-kit only reads the table definitions; migrations run through
// src/db/migrate.ts (advisory lock, PGlite or node-postgres), never `drizzle-kit migrate`.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/tables.ts',
  out: './drizzle',
  strict: true,
  verbose: true,
});
