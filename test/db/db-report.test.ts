/**
 * `npm run db:report` (scripts/db-report.ts), run as its own process against
 * a migrated database with a few requests: every section, with the names of
 * the real indexes and tables. On PGlite, also what it says when the service
 * holds the data folder.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { sql } from 'drizzle-orm';
import { testDatabaseKind } from '../helpers/database.js';
import { insertRequest } from '../helpers/factories.js';
import { reportStageIn } from '../helpers/requests.js';
import { createScriptDatabase, runScript, type ScriptDatabase } from '../helpers/scripts.js';

let database: ScriptDatabase;
beforeAll(async () => {
  database = await createScriptDatabase();
  await database.use(async (db) => {
    for (let i = 0; i < 3; i++) {
      const { id } = await insertRequest(db);
      await reportStageIn(db, id, 'validation', 'in_progress');
      await reportStageIn(db, id, 'validation', 'completed');
    }
    // Installed but not preloaded on the test server: the report says it cannot read it.
    if (testDatabaseKind() === 'postgres') await db.execute(sql`create extension if not exists pg_stat_statements`);
  });
});
afterAll(() => database?.close());

/** The lines of one `== title` section of the report. */
function section(report: string, title: string): string {
  const start = report.indexOf(`\n== ${title} (`);
  expect(start, `section ${title}`).toBeGreaterThanOrEqual(0);
  const end = report.indexOf('\n== ', start + 1);
  return report.slice(start, end < 0 ? undefined : end);
}

test('prints index usage, unused indexes, sizes, dead tuples and the slowest statements', async () => {
  const report = await runScript('db-report.ts', [], database.env);
  expect(report).toMatchObject({ code: 0, stderr: '' });
  const { stdout } = report;
  expect(stdout).toMatch(testDatabaseKind() === 'postgres' ? /^Database report: PostgreSQL \(DATABASE_URL\)\n/ : /^Database report: PGlite \(/);

  // pg_stat_user_indexes' own index name column (indexrelname), next to its table.
  expect(section(stdout, 'Index usage')).toMatch(/^ {2}content_requests +idx_content_requests_status +\d+ +\d+ +\d+ +\d+ (bytes|kB)$/m);
  expect(section(stdout, 'Index usage')).toMatch(/^ {2}request_events +request_events_feed_position_key /m);
  // Unique indexes are never listed as unused: they enforce a rule.
  expect(section(stdout, 'Unused indexes')).not.toMatch(/_pkey|_key\b/);
  expect(section(stdout, 'Table and index sizes')).toMatch(/^ {2}content_requests +\S+/m);
  expect(section(stdout, 'Dead tuples')).toMatch(/^ {2}request_stages +\d+ +\d+ +[\d.]+% /m);
  expect(section(stdout, 'Slowest statements')).toMatch(
    testDatabaseKind() === 'postgres'
      ? // Not preloaded (the test server), or preloaded: then its table.
        /pg_stat_statements is installed but cannot be read|calls +mean_ms +total_ms +rows +statement/
      : /not available in embedded PGlite/,
  );
}, 60_000);

test.skipIf(testDatabaseKind() !== 'pglite')('on a data folder the service holds, says so and exits 1', async () => {
  const report = await database.use(() => runScript('db-report.ts', [], database.env));
  expect(report.code).toBe(1);
  expect(report.stderr).toMatch(/Stop the service using DATA_DIR first, or run the report with DATABASE_URL/);
  expect(report.stdout).toBe('');
}, 60_000);
