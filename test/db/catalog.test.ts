/**
 * The migrated schema, read back from PostgreSQL's catalogs (not from our own
 * code), against the seed's migration report (docs/data-model.md).
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

async function rows<T>(query: ReturnType<typeof sql>): Promise<T[]> {
  return (await t.database.db.execute(query)).rows as T[];
}

describe('tables', () => {
  test('all seven tables of the seed exist, and the service’s own: rate limits, job leases, stage estimates, retention’s watermark, the rollup’s cursor', async () => {
    const tables = await rows<{ tablename: string }>(
      sql`select tablename from pg_tables where schemaname = 'public' order by tablename`,
    );
    expect(tables.map((r) => r.tablename)).toEqual([
      'content_requests',
      'event_log_cursors',
      'job_leases',
      'organizations',
      'pipeline_stage_definitions',
      'rate_limits',
      'request_events',
      'request_metrics',
      'request_stages',
      'retention_watermark',
      'stage_duration_estimates',
      'users',
    ]);
  });

  test('content_requests has its 21 columns, by group', async () => {
    const columns = await rows<{ column_name: string; data_type: string; is_nullable: string }>(sql`
      select column_name, data_type, is_nullable from information_schema.columns
      where table_schema = 'public' and table_name = 'content_requests' order by ordinal_position`);
    expect(columns).toHaveLength(21);
    const byName = Object.fromEntries(columns.map((c) => [c.column_name, c]));
    const groups = {
      identity: ['id', 'correlation_id', 'submitted_correlation_id'],
      who: ['student_id', 'organization_id'],
      what: ['topic', 'student_query', 'grade_level', 'metadata'],
      lifecycle: ['status', 'current_stage', 'progress_percentage', 'retry_count'],
      outcome: ['result', 'error_message', 'error_stage'],
      times: ['created_at', 'updated_at', 'started_at', 'completed_at', 'failed_at'],
    };
    for (const names of Object.values(groups)) {
      for (const name of names) expect(byName[name], name).toBeDefined();
    }
    expect(byName.id!.data_type).toBe('uuid');
    expect(byName.metadata!.data_type).toBe('jsonb');
    expect(byName.result!.data_type).toBe('jsonb');
    expect(byName.status!.data_type).toBe('USER-DEFINED');
    expect(byName.correlation_id!.is_nullable).toBe('NO');
    expect(byName.organization_id!.is_nullable).toBe('YES');
    expect(byName.failed_at!.data_type).toBe('timestamp with time zone');
  });

  test('organizations default to the free tier', async () => {
    const [column] = await rows<{ column_default: string }>(sql`
      select column_default from information_schema.columns
      where table_name = 'organizations' and column_name = 'subscription_tier'`);
    expect(column!.column_default).toContain("'free'");
  });

  test('request_events has a bigint identity id and a per-request sequence', async () => {
    const columns = await rows<{ column_name: string; data_type: string; is_identity: string }>(sql`
      select column_name, data_type, is_identity from information_schema.columns
      where table_name = 'request_events' and column_name in ('id', 'sequence') order by column_name`);
    expect(columns).toEqual([
      { column_name: 'id', data_type: 'bigint', is_identity: 'YES' },
      { column_name: 'sequence', data_type: 'integer', is_identity: 'NO' },
    ]);
    const [unique] = await rows<{ definition: string }>(sql`
      select pg_get_constraintdef(oid) as definition from pg_constraint
      where conname = 'request_events_request_id_sequence_key'`);
    expect(unique!.definition).toBe('UNIQUE (request_id, sequence)');
  });

  test('request_stages is unique per (request_id, stage_name)', async () => {
    const [unique] = await rows<{ definition: string }>(sql`
      select pg_get_constraintdef(oid) as definition from pg_constraint
      where conrelid = 'request_stages'::regclass and contype = 'u'`);
    expect(unique!.definition).toBe('UNIQUE (request_id, stage_name)');
  });
});

describe('enums', () => {
  test('content_request_status has the seed’s eight statuses plus cancelled, in order', async () => {
    const labels = await rows<{ enumlabel: string }>(sql`
      select enumlabel from pg_enum where enumtypid = 'content_request_status'::regtype order by enumsortorder`);
    expect(labels.map((l) => l.enumlabel)).toEqual([
      'pending',
      'validating',
      'retrieving',
      'generating_script',
      'generating_video',
      'processing_video',
      'completed',
      'failed',
      'cancelled',
    ]);
  });

  test('content_stage_status exists', async () => {
    const labels = await rows<{ enumlabel: string }>(sql`
      select enumlabel from pg_enum where enumtypid = 'content_stage_status'::regtype order by enumsortorder`);
    expect(labels.map((l) => l.enumlabel)).toEqual(['pending', 'in_progress', 'completed', 'failed', 'skipped']);
  });
});

describe('indexes on content_requests', () => {
  // The seed's twelve, with their columns and the two partial predicates.
  const seedIndexes: Record<string, RegExp> = {
    content_requests_pkey: /UNIQUE INDEX content_requests_pkey .*\(id\)$/,
    content_requests_correlation_id_key: /UNIQUE INDEX content_requests_correlation_id_key .*\(correlation_id\)$/,
    idx_content_requests_correlation: /btree \(correlation_id\)$/,
    idx_content_requests_student: /btree \(student_id\)$/,
    idx_content_requests_status: /btree \(status\)$/,
    idx_content_requests_created: /btree \(created_at DESC( NULLS LAST)?\)$/,
    idx_content_requests_org: /btree \(organization_id\)$/,
    idx_content_requests_correlation_status: /btree \(correlation_id, status\)$/,
    idx_content_requests_student_status_created: /btree \(student_id, status, created_at DESC( NULLS LAST)?\)$/,
    idx_content_requests_status_created: /btree \(status, created_at DESC( NULLS LAST)?\)$/,
    idx_content_requests_org_status_created:
      /btree \(organization_id, status, created_at DESC( NULLS LAST)?\) WHERE \(organization_id IS NOT NULL\)$/,
    idx_content_requests_failed_debugging:
      /btree \(status, error_stage, failed_at DESC( NULLS LAST)?\) WHERE \(status = 'failed'::content_request_status\)$/,
  };

  test('the seed’s 12 indexes exist by name, with their columns and predicates', async () => {
    const indexes = await rows<{ indexname: string; indexdef: string }>(
      sql`select indexname, indexdef from pg_indexes where tablename = 'content_requests'`,
    );
    const byName = Object.fromEntries(indexes.map((i) => [i.indexname, i.indexdef]));
    expect(Object.keys(seedIndexes)).toHaveLength(12);
    for (const [name, definition] of Object.entries(seedIndexes)) {
      expect(byName[name], name).toMatch(definition);
    }
  });

  test('exactly two of them are partial', async () => {
    const partial = await rows<{ name: string }>(sql`
      select c.relname as name from pg_index i join pg_class c on c.oid = i.indexrelid
      where i.indrelid = 'content_requests'::regclass and i.indpred is not null
        and c.relname like 'idx_content_requests_%' and c.relname in (
          'idx_content_requests_org_status_created', 'idx_content_requests_failed_debugging',
          'idx_content_requests_correlation', 'idx_content_requests_student', 'idx_content_requests_status',
          'idx_content_requests_created', 'idx_content_requests_org', 'idx_content_requests_correlation_status',
          'idx_content_requests_student_status_created', 'idx_content_requests_status_created')
      order by 1`);
    expect(partial.map((p) => p.name)).toEqual([
      'idx_content_requests_failed_debugging',
      'idx_content_requests_org_status_created',
    ]);
  });
});

describe('foreign keys', () => {
  test('content_requests references users and organizations under the seed’s names', async () => {
    const keys = await rows<{ conname: string; target: string }>(sql`
      select conname, confrelid::regclass::text as target from pg_constraint
      where conrelid = 'content_requests'::regclass and contype = 'f' order by conname`);
    expect(keys).toEqual([
      { conname: 'content_requests_organization_id_fkey', target: 'organizations' },
      { conname: 'content_requests_student_id_fkey', target: 'users' },
    ]);
  });

  test('stages and events cascade on delete of their request', async () => {
    const keys = await rows<{ table: string; on_delete: string }>(sql`
      select conrelid::regclass::text as table, confdeltype::text as on_delete from pg_constraint
      where confrelid = 'content_requests'::regclass and contype = 'f' order by 1`);
    expect(keys).toEqual([
      { table: 'request_events', on_delete: 'c' },
      { table: 'request_stages', on_delete: 'c' },
    ]);
  });

  test('every foreign key says what happens on delete', async () => {
    const keys = await rows<{ conname: string; on_delete: string }>(sql`
      select conname, confdeltype::text as on_delete from pg_constraint
      where contype = 'f' and connamespace = 'public'::regnamespace`);
    expect(keys.length).toBeGreaterThanOrEqual(7);
    for (const key of keys) expect(['c', 'n', 'r'], key.conname).toContain(key.on_delete);
  });
});

describe('functions, triggers and views', () => {
  test('the seed’s functions exist with their signatures', async () => {
    const functions = await rows<{ signature: string; returns: string }>(sql`
      select p.oid::regprocedure::text as signature, pg_get_function_result(p.oid) as returns
      from pg_proc p where p.pronamespace = 'public'::regnamespace
        and p.proname in ('calculate_request_progress', 'update_request_progress', 'log_status_change')
      order by 1`);
    expect(functions).toEqual([
      { signature: 'calculate_request_progress(uuid)', returns: 'integer' },
      { signature: 'log_status_change()', returns: 'trigger' },
      { signature: 'update_request_progress()', returns: 'trigger' },
    ]);
  });

  test('the seed’s triggers sit on their tables and call their functions', async () => {
    const triggers = await rows<{ tgname: string; table: string; function: string }>(sql`
      select t.tgname, t.tgrelid::regclass::text as table, p.proname as function
      from pg_trigger t join pg_proc p on p.oid = t.tgfoid
      where not t.tgisinternal order by 2, 1`);
    expect(triggers).toEqual(
      expect.arrayContaining([
        { tgname: 'update_progress_on_stage_change', table: 'request_stages', function: 'update_request_progress' },
        { tgname: 'log_request_status_changes', table: 'content_requests', function: 'log_status_change' },
        { tgname: 'enforce_status_lifecycle', table: 'content_requests', function: 'tg_content_requests__enforce_lifecycle' },
        { tgname: 'set_updated_at', table: 'content_requests', function: 'tg__set_updated_at' },
        { tgname: 'set_updated_at', table: 'request_stages', function: 'tg__set_updated_at' },
        { tgname: 'set_updated_at', table: 'users', function: 'tg__set_updated_at' },
        { tgname: 'set_updated_at', table: 'organizations', function: 'tg__set_updated_at' },
      ]),
    );
  });

  test('both views exist', async () => {
    const views = await rows<{ viewname: string }>(
      sql`select viewname from pg_views where schemaname = 'public' order by viewname`,
    );
    expect(views.map((v) => v.viewname)).toEqual(['active_requests_dashboard', 'request_metrics_summary']);
  });

  test('the pipeline stages are seeded in order, their weights summing to 100', async () => {
    const stages = await rows<{ stage_name: string; request_status: string; progress_weight: number }>(sql`
      select stage_name, request_status::text, progress_weight from pipeline_stage_definitions order by stage_order`);
    expect(stages.map((s) => [s.stage_name, s.request_status])).toEqual([
      ['validation', 'validating'],
      ['retrieval', 'retrieving'],
      ['script_generation', 'generating_script'],
      ['video_generation', 'generating_video'],
      ['video_processing', 'processing_video'],
    ]);
    expect(stages.reduce((sum, s) => sum + s.progress_weight, 0)).toBe(100);
  });
});
