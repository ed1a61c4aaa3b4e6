/**
 * Migrations up, down and up again; several migrators at once; custom SQL
 * that can run twice.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, test } from 'vitest';
import { connectPostgres, type Database } from '../../src/db/client.js';
import { appliedTags, migrateDown, migrateUp, MIGRATIONS_FOLDER } from '../../src/db/migrate.js';
import { sqlState } from '../../src/services/errors.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const journal = JSON.parse(await readFile(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as {
  entries: { tag: string }[];
};
const ALL_TAGS = journal.entries.map((entry) => entry.tag);
const VIEWS_AT = ALL_TAGS.indexOf('0003_views');
// drizzle-kit writes these from src/db/tables.ts (plain DDL, once only); we write the rest.
const GENERATED = new Set([
  '0000_tables',
  '0004_feed_position',
  '0006_scoped_correlation_ids',
  '0008_rate_limits',
  '0011_stage_duration_estimates',
]);
const CUSTOM_TAGS = ALL_TAGS.filter((tag) => !GENERATED.has(tag));
const CUSTOM_MARKER = '-- custom SQL below';

const opened: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});
async function emptyDatabase() {
  const t = await createTestDatabase({ migrated: false });
  opened.push(t);
  return t;
}

/** Our objects in the public schema, as the catalog lists them. */
async function publicObjects(database: Database): Promise<string[]> {
  const result = await database.db.execute<{ object: string }>(sql`
    select 'table ' || tablename as object from pg_tables where schemaname = 'public'
    union all select 'view ' || viewname from pg_views where schemaname = 'public'
    union all select 'type ' || typname from pg_type
      where typnamespace = 'public'::regnamespace and typtype = 'e'
    union all select 'function ' || proname from pg_proc where pronamespace = 'public'::regnamespace
    union all select 'trigger ' || tgname || ' on ' || tgrelid::regclass from pg_trigger where not tgisinternal
    union all select 'index ' || indexname from pg_indexes where schemaname = 'public'
    order by 1`);
  return result.rows.map((r) => r.object);
}

const tagsOf = (database: Database) =>
  (database.withSession as (w: (s: Database['db']) => Promise<string[]>) => Promise<string[]>)((session) =>
    appliedTags(session),
  );

// Each test migrates a whole database up (and down) from nothing: on PGlite on a busy machine, past the 30 s default.
describe('migrations', { timeout: 120_000 }, () => {
  test('up, down one step, down all, up again', async () => {
    const { database } = await emptyDatabase();
    expect(await publicObjects(database)).toEqual([]);

    expect(await migrateUp(database)).toEqual(ALL_TAGS);
    const migrated = await publicObjects(database);
    expect(migrated).toContain('view active_requests_dashboard');
    expect(migrated).toContain('function log_status_change');
    expect(await migrateUp(database)).toEqual([]);

    expect(await migrateDown(database)).toEqual([ALL_TAGS.at(-1)]);
    expect(await tagsOf(database)).toEqual(ALL_TAGS.slice(0, -1));

    // Down to just before the views: they go, the functions stay.
    expect(await migrateDown(database, ALL_TAGS.length - 1 - VIEWS_AT)).toEqual(ALL_TAGS.slice(VIEWS_AT, -1).reverse());
    const withoutViews = await publicObjects(database);
    expect(withoutViews).not.toContain('view active_requests_dashboard');
    expect(withoutViews).toContain('function log_status_change');
    expect(await tagsOf(database)).toEqual(ALL_TAGS.slice(0, VIEWS_AT));

    expect(await migrateDown(database, 100)).toEqual(ALL_TAGS.slice(0, VIEWS_AT).reverse());
    expect(await publicObjects(database)).toEqual([]);
    expect(await tagsOf(database)).toEqual([]);

    expect(await migrateUp(database)).toEqual(ALL_TAGS);
    expect(await publicObjects(database)).toEqual(migrated);
  });

  test('three migrators started at once all succeed, and the work is done once', async () => {
    const t = await emptyDatabase();
    // On a server: three separate pools, as three processes would have. PGlite
    // is one process's database: three callers on the one instance.
    const migrators = t.url ? [1, 2, 3].map(() => connectPostgres({ url: t.url!, poolSize: 1 })) : [t.database, t.database, t.database];
    try {
      const applied = await Promise.all(migrators.map((database) => migrateUp(database)));
      expect(applied.flat().sort()).toEqual([...ALL_TAGS].sort());
      expect(await tagsOf(t.database)).toEqual(ALL_TAGS);
      const stages = await t.database.db.execute<{ n: number }>(
        sql`select count(*)::int as n from pipeline_stage_definitions`,
      );
      expect(stages.rows[0]!.n).toBe(5);
    } finally {
      if (t.url) await Promise.all(migrators.map((database) => database.close()));
    }
  });

  test('the custom SQL migrations can run twice without error or duplicates', async () => {
    const { database } = await emptyDatabase();
    await migrateUp(database);
    const before = await publicObjects(database);
    for (const tag of CUSTOM_TAGS) {
      const text = await readFile(path.join(MIGRATIONS_FOLDER, `${tag}.sql`), 'utf8');
      // A generated migration with custom SQL appended: only what follows the marker is ours to rerun.
      const ours = text.includes(CUSTOM_MARKER) ? text.slice(text.indexOf(CUSTOM_MARKER)) : text;
      for (const statement of ours.split('--> statement-breakpoint')) {
        await database.db.execute(sql.raw(statement));
      }
    }
    expect(await publicObjects(database)).toEqual(before);
    const stages = await database.db.execute<{ n: number }>(sql`select count(*)::int as n from pipeline_stage_definitions`);
    expect(stages.rows[0]!.n).toBe(5);
  });

  test('a rollback that would lose referenced rows is refused and changes nothing', async () => {
    const { database } = await emptyDatabase();
    await migrateUp(database);
    await database.db.execute(sql`
      insert into users (user_id) values ('u1');
    `);
    await database.db.execute(sql`
      insert into content_requests (correlation_id, student_id, topic, student_query) values ('c1', 'u1', 't', 'q')`);
    await database.db.execute(sql`
      insert into request_stages (request_id, stage_name) select id, 'validation' from content_requests`);
    // Down through 0001: its DELETE of the stage definitions is restricted by request_stages.
    // The ON DELETE RESTRICT key from request_stages refuses it, not some other failure.
    const refused = await migrateDown(database, ALL_TAGS.length - 1).then(() => undefined, (error: unknown) => error);
    // PostgreSQL 15 reports it as 23503 (foreign key violation), 18 (PGlite) as 23001 (restrict violation).
    expect(['23503', '23001']).toContain(sqlState(refused));
    // Everything after 0001 went, one transaction a step; 0001 did not.
    expect(await tagsOf(database)).toEqual(ALL_TAGS.slice(0, 2));
    const stages = await database.db.execute<{ n: number }>(sql`select count(*)::int as n from pipeline_stage_definitions`);
    expect(stages.rows[0]!.n).toBe(5);
  });
});
