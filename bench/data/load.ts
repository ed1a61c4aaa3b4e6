/**
 * Data at scale: fills a freshly migrated database with
 * `requests` content requests (10,000 students in 100 organizations; about
 * 5% failed, 2% active, the rest completed; created over 90 days), their
 * stages and about five events each, in a few INSERT … SELECT statements
 * over generate_series, all in PostgreSQL.
 *
 * Bulk-load practice, on one session:
 * - `session_replication_role = replica` turns the triggers off (and the
 *   foreign-key checks, which are triggers too) while loading; the loader
 *   writes what the triggers would have (progress, stamps, event sequences,
 *   feed positions) itself, consistently: `sequence` counts 1, 2, 3 … per
 *   request and `feed_position` follows the events' ids, then the feed
 *   position sequence is set past the last one;
 * - the secondary indexes (not the primary keys or unique constraints) are
 *   dropped first and re-created from their own definitions after the load,
 *   which is several times faster than maintaining 14 indexes row by row;
 * - VACUUM (ANALYZE) at the end, so plans see real statistics and the
 *   visibility map allows index-only scans.
 *
 * Every figure is deterministic in the request's ordinal (hashint4), except
 * the ids of stages (gen_random_uuid) and absolute times (relative to now()).
 */
import pg from 'pg';

export type LoadOptions = {
  url: string;
  requests: number;
  students?: number;
  organizations?: number;
  log?: (line: string) => void;
};

export type TableLoad = { table: string; rows: number; ms: number; rowsPerSecond: number };

export type LoadResult = {
  requests: number;
  students: number;
  organizations: number;
  byStatus: Record<string, number>;
  tables: TableLoad[];
  /** Rows inserted (all tables) over the insert time alone. */
  insertRowsPerSecond: number;
  indexes: { count: number; ms: number };
  vacuumAnalyzeMs: number;
  /** Everything: inserts, index builds, VACUUM ANALYZE. */
  totalMs: number;
  /** All rows over the total time. */
  totalRowsPerSecond: number;
  sizes: Record<string, string>;
};

// The history it writes has the seeded pipeline's shape (five stages, these
// weights), a fixture for the benchmark rather than a reading of the definitions.
const STAGES = `ARRAY['validation','retrieval','script_generation','video_generation','video_processing']`;
const STATUSES = `ARRAY['validating','retrieving','generating_script','generating_video','processing_video']::content_request_status[]`;
/** Request progress when stage k starts (the weights are 5, 15, 25, 45, 10). */
const PROGRESS_BEFORE = `ARRAY[0, 5, 20, 45, 90]`;

export async function loadData(options: LoadOptions): Promise<LoadResult> {
  const students = options.students ?? 10_000;
  const organizations = options.organizations ?? 100;
  const n = options.requests;
  const log = options.log ?? (() => undefined);
  const client = new pg.Client({ connectionString: options.url, application_name: 'tracker-bench:load' });
  await client.connect();
  const started = performance.now();
  const tables: TableLoad[] = [];
  const timed = async (table: string, sql: string, params: unknown[] = []) => {
    const t0 = performance.now();
    const result = await client.query(sql, params);
    const ms = performance.now() - t0;
    const rows = result.rowCount ?? 0;
    if (table) {
      tables.push({ table, rows, ms: Math.round(ms), rowsPerSecond: Math.round(rows / (ms / 1000)) });
      log(`loaded ${rows.toLocaleString('en-US')} ${table} in ${(ms / 1000).toFixed(1)} s`);
    }
    return result;
  };
  try {
    await client.query(`set session_replication_role = replica`);
    await client.query(`set maintenance_work_mem = '256MB'`);
    await client.query(`set synchronous_commit = off`);

    // Secondary indexes of the loaded tables: dropped now, re-created after.
    const { rows: indexes } = await client.query<{ name: string; definition: string }>(
      `select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as definition
         from pg_index i
        where i.indrelid in ('content_requests'::regclass, 'request_stages'::regclass, 'request_events'::regclass, 'users'::regclass)
          and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)`,
    );
    for (const index of indexes) await client.query(`drop index ${index.name}`);

    await client.query('begin');
    await timed(
      'organizations',
      `insert into organizations (organization_id, name, domain, subscription_tier)
       select 'org-' || lpad(o::text, 3, '0'), 'Organization ' || o, 'org' || o || '.example.edu',
              (array['free','pro','enterprise'])[1 + o % 3]
         from generate_series(1, $1::int) o`,
      [organizations],
    );
    await timed(
      'users',
      `insert into users (user_id, email, name, role, organization_id)
       select 'student-' || lpad(s::text, 5, '0'), 'student' || s || '@example.edu', 'Student ' || s, 'student',
              'org-' || lpad((1 + s % $2::int)::text, 3, '0')
         from generate_series(1, $1::int) s`,
      [students, organizations],
    );
    // One row per request with what the three inserts below derive from it.
    await client.query(`create temporary table load_requests on commit drop as
      select i, id, s, kind, case when kind = 'completed' then 5 else 1 + b % 5 end as k, created_at
        from (
          select i,
                 -- A version-4, RFC 4122 variant UUID (as gen_random_uuid() makes), deterministic in i.
                 overlay(overlay(md5('bench-request-' || i) placing '4' from 13) placing '8' from 17)::uuid as id,
                 1 + (hashint4(i) & 2147483647) % $2::int as s,
                 b,
                 case when b < 50 then 'failed' when b < 70 then 'active' else 'completed' end as kind,
                 case when b between 50 and 69
                   -- active: started within the last two hours
                   then now() - make_interval(secs => (hashint4(i + 17) & 2147483647) % 7200)
                   else now() - interval '90 days' * (($1::int - i)::float8 / $1::int)
                        - make_interval(secs => (hashint4(i + 29) & 2147483647) % 600 + 7200)
                 end as created_at
            from (select i, (hashint4(i * 7 + 3) & 2147483647) % 1000 as b from generate_series(1, $1::int) i) numbered
        ) r`, [n, students]);
    await timed(
      'content_requests',
      `insert into content_requests
         (id, correlation_id, student_id, organization_id, topic, student_query, grade_level, metadata, status,
          current_stage, progress_percentage, result, error_message, error_stage,
          created_at, updated_at, started_at, completed_at, failed_at)
       select r.id, 'bench-' || r.i, 'student-' || lpad(r.s::text, 5, '0'), 'org-' || lpad((1 + r.s % $1::int)::text, 3, '0'),
              'Topic ' || (r.i % 997), 'Explain topic ' || (r.i % 997) || ' with an example', 'grade-' || (1 + r.i % 12),
              '{}'::jsonb,
              case r.kind when 'completed' then 'completed'::content_request_status
                          when 'failed' then 'failed'::content_request_status
                          else (${STATUSES})[r.k] end,
              (${STAGES})[r.k],
              case r.kind when 'completed' then 100 else (${PROGRESS_BEFORE})[r.k] end,
              case when r.kind = 'completed' then jsonb_build_object('videoUrl', 'https://cdn.example.edu/v/' || r.i) end,
              case when r.kind = 'failed' then (${STAGES})[r.k] || ' timed out' end,
              case when r.kind = 'failed' then (${STAGES})[r.k] end,
              r.created_at,
              r.created_at + interval '30 minutes',
              r.created_at + interval '1 second',
              case when r.kind = 'completed' then r.created_at + interval '25 minutes' end,
              case when r.kind = 'failed' then r.created_at + r.k * interval '4 minutes' end
         from load_requests r
        order by r.i`,
      [organizations],
    );
    await timed(
      'request_stages',
      `insert into request_stages
         (request_id, stage_name, status, progress_percentage, started_at, completed_at, duration_seconds, error_message, created_at, updated_at)
       select r.id, (${STAGES})[j],
              case when j < r.k or r.kind = 'completed' then 'completed'::content_stage_status
                   when r.kind = 'failed' then 'failed'::content_stage_status
                   else 'in_progress'::content_stage_status end,
              case when j < r.k or r.kind = 'completed' then 100 when r.kind = 'failed' then 30 else 40 end,
              r.created_at + j * interval '4 minutes',
              case when j < r.k or r.kind = 'completed' then r.created_at + (j + 1) * interval '4 minutes' end,
              case when j < r.k or r.kind = 'completed' then 240 end,
              case when j = r.k and r.kind = 'failed' then (${STAGES})[j] || ' timed out' end,
              r.created_at + j * interval '4 minutes',
              r.created_at + (j + 1) * interval '4 minutes'
         from load_requests r cross join lateral generate_series(1, r.k) j
        order by r.i, j`,
    );
    // Events: created, a stage start per step, and the outcome; 5 for a
    // completed request, k + 1 for a failed or active one (about 5 on average).
    // Ids come from the identity in insertion order; feed positions follow them.
    await timed(
      'request_events',
      `insert into request_events
         (request_id, sequence, event_type, old_status, new_status, stage, progress_percentage, severity, message, created_at, feed_position)
       select e.id, e.j, e.event_type, e.old_status, e.new_status, e.stage, e.progress, e.severity, e.message, e.at,
              nextval('request_events_feed_position_seq')
         from (
           select r.id, r.i, j,
                  case when j = 1 then 'created'::request_event_type
                       when j = last and r.kind = 'completed' then 'completed'::request_event_type
                       when j = last and r.kind = 'failed' then 'failure'::request_event_type
                       else 'stage_started'::request_event_type end as event_type,
                  case when j = 1 then null when j = 2 then 'pending'::content_request_status
                       else (${STATUSES})[least(j - 2, 5)] end as old_status,
                  case when j = 1 then 'pending'::content_request_status
                       when j = last and r.kind = 'completed' then 'completed'::content_request_status
                       when j = last and r.kind = 'failed' then 'failed'::content_request_status
                       else (${STATUSES})[least(j - 1, 5)] end as new_status,
                  case when j = 1 then null else (${STAGES})[least(j - 1, 5)] end as stage,
                  case when j = last and r.kind = 'completed' then 100 when j = 1 then 0 else (${PROGRESS_BEFORE})[least(j - 1, 5)] end as progress,
                  case when j = last and r.kind = 'failed' then 'error'::event_severity else 'info'::event_severity end as severity,
                  case when j = 1 then 'Request created' else 'Stage ' || (${STAGES})[least(j - 1, 5)] || ' started' end as message,
                  r.created_at + (j - 1) * interval '4 minutes' as at
             from (select *, case when kind = 'completed' then 5 else k + 1 end as last from load_requests) r
             cross join lateral generate_series(1, r.last) j
         ) e
        order by e.i, e.j`,
    );
    await client.query(
      `select setval('request_events_feed_position_seq', coalesce((select max(feed_position) from request_events), 0) + 1, false)`,
    );
    await client.query('commit');

    const indexStarted = performance.now();
    for (const index of indexes) await client.query(index.definition);
    const indexMs = performance.now() - indexStarted;
    log(`re-created ${indexes.length} indexes in ${(indexMs / 1000).toFixed(1)} s`);
    await client.query(`reset session_replication_role`);

    const vacuumStarted = performance.now();
    for (const table of ['organizations', 'users', 'content_requests', 'request_stages', 'request_events']) {
      await client.query(`vacuum (analyze) ${table}`);
    }
    const vacuumMs = performance.now() - vacuumStarted;
    log(`vacuum (analyze) in ${(vacuumMs / 1000).toFixed(1)} s`);

    const { rows: statusRows } = await client.query<{ status: string; count: string }>(
      `select status::text, count(*) from content_requests group by status order by status`,
    );
    const { rows: sizeRows } = await client.query<{ name: string; size: string }>(
      `select t as name, pg_size_pretty(pg_total_relation_size(t::regclass)) as size
         from unnest(array['content_requests', 'request_stages', 'request_events']) t`,
    );
    const totalMs = performance.now() - started;
    const totalRows = tables.reduce((sum, t) => sum + t.rows, 0);
    const insertOnlyMs = tables.reduce((sum, t) => sum + t.ms, 0);
    return {
      requests: n,
      students,
      organizations,
      byStatus: Object.fromEntries(statusRows.map((row) => [row.status, Number(row.count)])),
      tables,
      insertRowsPerSecond: Math.round(totalRows / (insertOnlyMs / 1000)),
      indexes: { count: indexes.length, ms: Math.round(indexMs) },
      vacuumAnalyzeMs: Math.round(vacuumMs),
      totalMs: Math.round(totalMs),
      totalRowsPerSecond: Math.round(totalRows / (totalMs / 1000)),
      sizes: Object.fromEntries(sizeRows.map((row) => [row.name, row.size])),
    };
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}
