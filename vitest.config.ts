import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

// Every suite runs on embedded PGlite; with DATABASE_URL set, also on that server.
// The dashboard is built once, in the PGlite project (its tests are about the page, not the database).
const projects: TestProjectInlineConfiguration[] = [
  {
    extends: true,
    test: { name: 'pglite', globalSetup: ['test/setup/pglite-template.ts', 'test/setup/dashboard-build.ts'] },
  },
];
if (process.env.DATABASE_URL) {
  projects.push({
    extends: true,
    test: { name: 'postgres', globalSetup: ['test/setup/postgres-template.ts'] },
  });
}

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS build (graphql 16 has no "exports" map);
    // Vite would pick its ESM build for our code while CommonJS dependencies
    // (graphql-armor) load the other: two graphql instances, and instanceof
    // GraphQLError fails across them. One build, as in production.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    projects,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: more workers only queue behind each other.
    maxWorkers: 2,
  },
});
