/**
 * The live benchmark's data: an organization, its students and admin, and
 * the pending requests the writer and the subscribers use; and the two
 * chores between phases (counting events, vacuuming).
 */
import pg from 'pg';
import type { BenchDatabase } from '../lib/database.js';
import type { LivePlan } from './plan.js';

export type Seeded = {
  total: number;
  pool: { id: string; sequence: number }[];
  /** The fan-out's subscribers' requests (plan.subscriptions): the first of heapIdle. */
  idle: string[];
  /** One request per idle subscription of the heap figure (plan.heapSubscriptions). */
  heapIdle: string[];
  broadcast: { id: string; sequence: number };
};

/**
 * An organization, 100 students, an admin, and the requests: the writer's
 * pool, one per idle subscription, and one every fan-out subscriber follows.
 * All pending (in flight), each with its `created` event (sequence 1).
 */
export async function seed(database: BenchDatabase, plan: LivePlan): Promise<Seeded> {
  const idleCount = Math.max(plan.subscriptions, plan.heapSubscriptions);
  const total = plan.poolSize + idleCount + 1;
  const client = new pg.Client({ connectionString: database.url, application_name: 'tracker-bench:seed' });
  await client.connect();
  try {
    await client.query(`insert into organizations (organization_id, name) values ('bench-org', 'Benchmark organization')`);
    await client.query(
      `insert into users (user_id, name, role, organization_id)
       select 'bench-student-' || i, 'Student ' || i, 'student', 'bench-org' from generate_series(0, 99) i`,
    );
    await client.query(`insert into users (user_id, name, role) values ('bench-admin', 'Benchmark admin', 'admin')`);
    const { rows } = await client.query<{ id: string; n: number }>(
      `insert into content_requests (correlation_id, student_id, organization_id, topic, student_query, grade_level)
       select 'bench-' || i, 'bench-student-' || (i % 100), 'bench-org', 'Photosynthesis', 'Explain photosynthesis', '8'
         from generate_series(1, $1::int) i
       returning id, (regexp_replace(correlation_id, '\\D', '', 'g'))::int as n`,
      [total],
    );
    rows.sort((a, b) => a.n - b.n);
    const sequences = await client.query<{ request_id: string; sequence: number }>(
      `select request_id, max(sequence)::int as sequence from request_events group by request_id`,
    );
    const sequenceOf = new Map(sequences.rows.map((row) => [row.request_id, row.sequence]));
    const tracked = (id: string) => ({ id, sequence: sequenceOf.get(id) ?? 0 });
    await client.query('vacuum analyze');
    return {
      total,
      pool: rows.slice(0, plan.poolSize).map((row) => tracked(row.id)),
      idle: rows.slice(plan.poolSize, plan.poolSize + plan.subscriptions).map((row) => row.id),
      heapIdle: rows.slice(plan.poolSize, plan.poolSize + plan.heapSubscriptions).map((row) => row.id),
      broadcast: tracked(rows[total - 1]!.id),
    };
  } finally {
    await client.end();
  }
}

export async function countEvents(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, application_name: 'tracker-bench:count' });
  await client.connect();
  try {
    const { rows } = await client.query<{ count: string }>('select count(*) from request_events');
    return Number(rows[0]!.count);
  } finally {
    await client.end();
  }
}

/**
 * Every change leaves a dead row in content_requests and one in request_events
 * (the publish trigger stamps the feed position): vacuum between phases, so no
 * phase pays for the ones before it (autovacuum may be off, as it is on the
 * machine these figures were first taken on).
 */
export async function vacuumTables(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'tracker-bench:vacuum' });
  await client.connect();
  try {
    await client.query('vacuum (analyze) content_requests, request_events');
  } finally {
    await client.end();
  }
}
