/**
 * The writes phase: submitContentRequest and reportStage through the API
 * under concurrent load (autocannon, from the client process), then the same
 * change as raw SQL from as many connections as the service's pool, with the
 * triggers on and off. Both sides do the same work: a new request each (the
 * same columns, the same idempotency insert), or the same sequence of stage
 * reports from the same starting state, each one moving its request's
 * progress (so writing one event); the events each side wrote are counted.
 */
import pg from 'pg';
import type { CpuMeter, CpuShares } from '../lib/cpu.js';
import type { RpcChild } from '../lib/rpc.js';
import { round, roundSummary, summarize, type Summary } from '../lib/stats.js';
import type { CannonParams, CannonResult, Throughput } from './client.js';
import type { ScalePlan } from './plan.js';
import type { Samples } from './samples.js';

export type RawRate = {
  connections: number;
  transactions: number;
  /** Statements that succeeded in the warm-up before (their changes are in the database too). */
  warmupTransactions: number;
  perSecond: number;
  latency: Summary;
  errors: number;
  firstError?: string;
  cpu: CpuShares;
};

export type WriteFigure = {
  name: string;
  description: string;
  rawSql: string;
  api: Throughput;
  /** What each side wrote, counted in the database: the changes each made and the events they logged. */
  work: string;
  /** Sides whose events did not match their changes (then the ratio compares unequal work). */
  unequalWork: string[];
  rawTriggersOn: RawRate;
  rawTriggersOff: RawRate;
  /** API requests a second over the raw statements a second. */
  ratioToTriggersOn: number;
  ratioToTriggersOff: number;
};

export const SUBMIT = `mutation($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { created request { id status } } }`;
export const REPORT = `mutation($input: ReportStageInput!) { reportStage(input: $input) { id status progressPercentage } }`;
const RAW_SUBMIT = `insert into content_requests (correlation_id, student_id, organization_id, topic, student_query, grade_level, metadata)
  values ($1, $2::varchar, (select organization_id from users where user_id = $2::varchar), $3, $4, null, '{}') on conflict (correlation_id) do nothing returning *`;
const RAW_REPORT = `insert into request_stages (request_id, stage_name, status, progress_percentage, error_message, metadata)
  values ($1, $2, 'in_progress', $3, null, '{}')
  on conflict (request_id, stage_name) do update set status = excluded.status, progress_percentage = excluded.progress_percentage,
    error_message = excluded.error_message, metadata = request_stages.metadata || excluded.metadata`;

/** At most this many running stages take turns in the report sequence (20 connections never report on one request at once). */
const REPORT_TARGETS = 5_000;

type StageChange = { requestId: string; stage: string; progress: number };

/**
 * The stage reports both sides send, in this order, cycling: each target's
 * running stage to a far value, then (a pass later) back to another far one.
 * A jump of at least 40 points moves even the lightest stage's request
 * progress (weight 5 of 100) by a whole point, so every report logs a
 * progress event. `reset` puts the targets back where they started (triggers
 * off, so it logs nothing), for the next side to start from the same state.
 */
export async function reportSequence(sql: pg.Client, targets: Samples['reportTargets']) {
  const { rows } = await sql.query<{ request_id: string; stage_name: string; stage_progress: number; request_progress: number }>(
    `select s.request_id, s.stage_name, s.progress_percentage as stage_progress, r.progress_percentage as request_progress
       from unnest($1::uuid[], $2::text[]) t(request_id, stage_name)
       join request_stages s on s.request_id = t.request_id and s.stage_name = t.stage_name
       join content_requests r on r.id = t.request_id`,
    [targets.map((t) => t.requestId), targets.map((t) => t.stage)],
  );
  const pass = (first: boolean): StageChange[] =>
    rows.map((r) => ({ requestId: r.request_id, stage: r.stage_name, progress: (r.stage_progress < 50) === first ? 90 : 10 }));
  const reset = async () => {
    await sql.query('set session_replication_role = replica');
    try {
      await sql.query(
        `update request_stages s set progress_percentage = t.progress
           from unnest($1::uuid[], $2::text[], $3::int[]) t(request_id, stage_name, progress)
          where s.request_id = t.request_id and s.stage_name = t.stage_name`,
        [rows.map((r) => r.request_id), rows.map((r) => r.stage_name), rows.map((r) => r.stage_progress)],
      );
      await sql.query(
        `update content_requests r set progress_percentage = t.progress from unnest($1::uuid[], $2::int[]) t(id, progress) where r.id = t.id`,
        [rows.map((r) => r.request_id), rows.map((r) => r.request_progress)],
      );
    } finally {
      await sql.query('reset session_replication_role');
    }
  };
  return { changes: [...pass(true), ...pass(false)], reset };
}

async function rawRate(
  databaseUrl: string,
  cpu: CpuMeter,
  connections: number,
  durationMs: number,
  warmupMs: number,
  triggers: boolean,
  statement: (n: number) => { text: string; values: unknown[] },
): Promise<RawRate> {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const c = new pg.Client({ connectionString: databaseUrl, application_name: 'tracker-bench:raw-write' });
      await c.connect();
      if (!triggers) await c.query('set session_replication_role = replica');
      return c;
    }),
  );
  try {
    let counter = 0;
    let errors = 0;
    let firstError: string | undefined;
    const run = async (ms: number, latencies: number[] | null) => {
      const deadline = performance.now() + ms;
      let done = 0;
      await Promise.all(
        clients.map(async (c) => {
          while (performance.now() < deadline) {
            const { text, values } = statement(counter++);
            const t0 = performance.now();
            try {
              await c.query(text, values);
              done++;
              latencies?.push(performance.now() - t0);
            } catch (error) {
              errors++;
              firstError ??= String(error);
            }
          }
        }),
      );
      return done;
    };
    const warmupTransactions = await run(warmupMs, null);
    errors = 0;
    const latencies: number[] = [];
    const stop = await cpu.start();
    const t0 = performance.now();
    const done = await run(durationMs, latencies);
    const elapsed = performance.now() - t0;
    return {
      connections,
      transactions: done,
      warmupTransactions,
      perSecond: round(done / (elapsed / 1000), 1),
      latency: roundSummary(summarize(latencies)),
      errors,
      ...(firstError ? { firstError } : {}),
      cpu: await stop(),
    };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

export async function measureWrites(
  plan: ScalePlan,
  databaseUrl: string,
  sql: pg.Client,
  client: RpcChild,
  cpu: CpuMeter,
  url: string,
  stopService: () => Promise<void>,
  samples: Samples,
  log: (line: string) => void,
): Promise<{ figures: WriteFigure[]; connections: number; poolSize: number }> {
  const load = async (params: Omit<CannonParams, 'connections' | 'durationMs' | 'warmupMs'>): Promise<Throughput> => {
    const stop = await cpu.start();
    const result = await client.call<CannonResult>('load', {
      ...params,
      connections: plan.connections,
      durationMs: plan.writes.apiMs,
      warmupMs: plan.writes.warmupMs,
    } satisfies CannonParams);
    return { ...result, cpu: await stop() };
  };
  const count = async (table: 'content_requests' | 'request_events') =>
    Number((await sql.query<{ n: string }>(`select count(*) as n from ${table}`)).rows[0]!.n);
  /** Rows of `tables` that `work` added. */
  const added = async <T>(tables: ('content_requests' | 'request_events')[], work: () => Promise<T>) => {
    const before = await Promise.all(tables.map(count));
    const result = await work();
    const after = await Promise.all(tables.map(count));
    return { result, rows: after.map((n, i) => n - before[i]!) };
  };
  // autocannon stops with requests in flight, at the warm-up's end and the run's: the service may still finish those.
  const inFlight = 2 * plan.connections;
  const check = (side: string, changes: number, rows: number[], names: string[], slack: number, unequal: string[]) => {
    const text = `${side}: ${changes.toLocaleString('en-US')} changes, ${rows.map((n, i) => `${n.toLocaleString('en-US')} ${names[i]}`).join(', ')}`;
    if (rows.some((n) => n < changes || n > changes + slack)) {
      unequal.push(text);
      log(`  !! ${text}: not one of each per change`);
    }
    return text;
  };
  const apiChanges = (t: Throughput) => t.warmupSucceeded + t.succeeded;
  const rawChanges = (r: RawRate) => r.warmupTransactions + r.transactions;

  // Through the API, with the service running.
  const submitApi = await added(['content_requests', 'request_events'], () =>
    load({
      url,
      query: SUBMIT,
      variants: samples.submitStudents.map((studentId) => ({
        variables: { input: { topic: 'Photosynthesis', studentQuery: 'How do plants make food?', studentId, correlationId: '' } },
        token: samples.admin,
      })),
      uniqueInputField: 'correlationId',
    }),
  );
  log(`  submitContentRequest: ${Math.round(submitApi.result.requestsPerSecond)}/s through the API`);
  const targets = samples.reportTargets.slice(0, REPORT_TARGETS);
  const sequence = targets.length ? await reportSequence(sql, targets) : undefined;
  await sequence?.reset();
  const reportApi = sequence
    ? await added(['request_events'], () =>
        load({
          url,
          query: REPORT,
          variants: sequence.changes.map((c) => ({
            variables: { input: { requestId: c.requestId, stage: c.stage, status: 'IN_PROGRESS', progress: c.progress } },
            token: samples.worker,
          })),
          inOrder: true,
        }),
      )
    : undefined;
  if (reportApi) log(`  reportStage: ${Math.round(reportApi.result.requestsPerSecond)}/s through the API`);

  // The same changes as raw SQL, with the service stopped (its listener would
  // otherwise read every event the triggers write).
  await stopService();
  const submitStudents = samples.submitStudents;
  const submitStatement = (n: number) => ({
    text: RAW_SUBMIT,
    values: [`raw-${process.pid}-${Date.now()}-${n}`, submitStudents[n % submitStudents.length], 'Photosynthesis', 'How do plants make food?'],
  });
  const reportStatement = (n: number) => {
    const c = sequence!.changes[n % sequence!.changes.length]!;
    return { text: RAW_REPORT, values: [c.requestId, c.stage, c.progress] };
  };
  const raw = (triggers: boolean, statement: (n: number) => { text: string; values: unknown[] }) =>
    rawRate(databaseUrl, cpu, plan.poolSize, plan.writes.rawMs, plan.writes.warmupMs, triggers, statement);

  const figures: WriteFigure[] = [];
  const submitOn = await added(['content_requests', 'request_events'], () => raw(true, submitStatement));
  const submitOff = await raw(false, submitStatement);
  log(`  raw insert: ${Math.round(submitOn.result.perSecond)}/s triggers on, ${Math.round(submitOff.perSecond)}/s off`);
  const submitUnequal: string[] = [];
  figures.push({
    name: 'submitContentRequest',
    description: 'a new request (admin, for a random student; a new correlation id each, inserted on conflict do nothing)',
    rawSql: RAW_SUBMIT.replace(/\s+/g, ' '),
    api: submitApi.result,
    work: [
      check('API', apiChanges(submitApi.result), submitApi.rows, ['requests', 'events'], inFlight, submitUnequal),
      check('raw (triggers on)', rawChanges(submitOn.result), submitOn.rows, ['requests', 'events'], 0, submitUnequal),
    ].join('; '),
    unequalWork: submitUnequal,
    rawTriggersOn: submitOn.result,
    rawTriggersOff: submitOff,
    ratioToTriggersOn: round(submitApi.result.requestsPerSecond / submitOn.result.perSecond),
    ratioToTriggersOff: round(submitApi.result.requestsPerSecond / submitOff.perSecond),
  });
  if (reportApi && sequence) {
    await sequence.reset();
    const reportOn = await added(['request_events'], () => raw(true, reportStatement));
    await sequence.reset();
    const reportOff = await raw(false, reportStatement);
    log(`  raw stage upsert: ${Math.round(reportOn.result.perSecond)}/s triggers on, ${Math.round(reportOff.perSecond)}/s off`);
    const reportUnequal: string[] = [];
    figures.push({
      name: 'reportStage',
      description:
        `progress of a running stage (worker): both sides send the same ${sequence.changes.length.toLocaleString('en-US')}-report sequence ` +
        `over ${targets.length.toLocaleString('en-US')} active requests from the same state, each report moving its request's progress`,
      rawSql: RAW_REPORT.replace(/\s+/g, ' '),
      api: reportApi.result,
      work: [
        check('API', apiChanges(reportApi.result), reportApi.rows, ['progress events'], inFlight, reportUnequal),
        check('raw (triggers on)', rawChanges(reportOn.result), reportOn.rows, ['progress events'], 0, reportUnequal),
      ].join('; '),
      unequalWork: reportUnequal,
      rawTriggersOn: reportOn.result,
      rawTriggersOff: reportOff,
      ratioToTriggersOn: round(reportApi.result.requestsPerSecond / reportOn.result.perSecond),
      ratioToTriggersOff: round(reportApi.result.requestsPerSecond / reportOff.perSecond),
    });
  }
  return { figures, connections: plan.connections, poolSize: plan.poolSize };
}
