/**
 * The writes phase: submitContentRequest and reportStage through the API
 * under concurrent load (autocannon, from the client process), then the same
 * change as raw SQL from as many connections as the service's pool, with the
 * triggers on and off.
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
  /** Rows the API run really created or changed, counted in the database afterwards. */
  apiEffect: string;
  rawTriggersOn: RawRate;
  rawTriggersOff: RawRate;
  /** API requests a second over the raw statements a second. */
  ratioToTriggersOn: number;
  ratioToTriggersOff: number;
};

const SUBMIT = `mutation($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { created request { id status } } }`;
const REPORT = `mutation($input: ReportStageInput!) { reportStage(input: $input) { id status progressPercentage } }`;
const RAW_SUBMIT = `insert into content_requests (correlation_id, student_id, organization_id, topic, student_query, grade_level, metadata)
  values ($1, $2::varchar, (select organization_id from users where user_id = $2::varchar), $3, $4, null, '{}') on conflict (correlation_id) do nothing returning *`;
const RAW_REPORT = `insert into request_stages (request_id, stage_name, status, progress_percentage, error_message, metadata)
  values ($1, $2, 'in_progress', $3, null, '{}')
  on conflict (request_id, stage_name) do update set status = excluded.status, progress_percentage = excluded.progress_percentage,
    error_message = excluded.error_message, metadata = request_stages.metadata || excluded.metadata`;

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
    await run(warmupMs, null);
    errors = 0;
    const latencies: number[] = [];
    const stop = await cpu.start();
    const t0 = performance.now();
    const done = await run(durationMs, latencies);
    const elapsed = performance.now() - t0;
    return {
      connections,
      transactions: done,
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
  const count = async (text: string) => Number((await sql.query<{ n: string }>(text)).rows[0]!.n);

  // Through the API, with the service running.
  const requestsBefore = await count(`select count(*) as n from content_requests`);
  const eventsBefore = await count(`select count(*) as n from request_events`);
  const submitApi = await load({
    url,
    query: SUBMIT,
    variants: samples.submitStudents.map((studentId) => ({
      variables: { input: { topic: 'Photosynthesis', studentQuery: 'How do plants make food?', studentId, correlationId: '' } },
      token: samples.admin,
    })),
    uniqueInputField: 'correlationId',
  });
  const requestsAfter = await count(`select count(*) as n from content_requests`);
  log(`  submitContentRequest: ${Math.round(submitApi.requestsPerSecond)}/s through the API`);
  const targets = samples.reportTargets.length ? samples.reportTargets : [];
  const eventsMid = await count(`select count(*) as n from request_events`);
  const reportApi = targets.length
    ? await load({
        url,
        query: REPORT,
        variants: Array.from({ length: Math.min(targets.length, 5_000) }, (_, i) => {
          const t = targets[i]!;
          // Each variant a different progress: most reports move the request's bar, so most write an event.
          return { variables: { input: { requestId: t.requestId, stage: t.stage, status: 'IN_PROGRESS', progress: 1 + (i % 98) } }, token: samples.worker };
        }),
      })
    : undefined;
  const eventsAfter = await count(`select count(*) as n from request_events`);
  if (reportApi) log(`  reportStage: ${Math.round(reportApi.requestsPerSecond)}/s through the API`);

  // The same changes as raw SQL, with the service stopped (its listener would
  // otherwise read every event the triggers write).
  await stopService();
  const submitStudents = samples.submitStudents;
  const submitStatement = (n: number) => ({
    text: RAW_SUBMIT,
    values: [`raw-${process.pid}-${Date.now()}-${n}`, submitStudents[n % submitStudents.length], 'Photosynthesis', 'How do plants make food?'],
  });
  const reportStatement = (n: number) => {
    const t = targets[Math.floor(Math.random() * targets.length)]!;
    return { text: RAW_REPORT, values: [t.requestId, t.stage, 1 + (n % 98)] };
  };
  const raw = (triggers: boolean, statement: (n: number) => { text: string; values: unknown[] }) =>
    rawRate(databaseUrl, cpu, plan.poolSize, plan.writes.rawMs, plan.writes.warmupMs, triggers, statement);

  const figures: WriteFigure[] = [];
  const submitOn = await raw(true, submitStatement);
  const submitOff = await raw(false, submitStatement);
  log(`  raw insert: ${Math.round(submitOn.perSecond)}/s triggers on, ${Math.round(submitOff.perSecond)}/s off`);
  figures.push({
    name: 'submitContentRequest',
    description: 'a new request (admin, for a random student; a new correlation id each)',
    rawSql: RAW_SUBMIT.replace(/\s+/g, ' '),
    api: submitApi,
    apiEffect: `${(requestsAfter - requestsBefore).toLocaleString('en-US')} requests created (warm-up included), ${(eventsMid - eventsBefore).toLocaleString('en-US')} events`,
    rawTriggersOn: submitOn,
    rawTriggersOff: submitOff,
    ratioToTriggersOn: round(submitApi.requestsPerSecond / submitOn.perSecond),
    ratioToTriggersOff: round(submitApi.requestsPerSecond / submitOff.perSecond),
  });
  if (reportApi) {
    const reportOn = await raw(true, reportStatement);
    const reportOff = await raw(false, reportStatement);
    log(`  raw stage upsert: ${Math.round(reportOn.perSecond)}/s triggers on, ${Math.round(reportOff.perSecond)}/s off`);
    figures.push({
      name: 'reportStage',
      description: `progress of a running stage (worker; ${targets.length.toLocaleString('en-US')} active requests)`,
      rawSql: RAW_REPORT.replace(/\s+/g, ' '),
      api: reportApi,
      apiEffect: `${(eventsAfter - eventsMid).toLocaleString('en-US')} progress events written (warm-up included)`,
      rawTriggersOn: reportOn,
      rawTriggersOff: reportOff,
      ratioToTriggersOn: round(reportApi.requestsPerSecond / reportOn.perSecond),
      ratioToTriggersOff: round(reportApi.requestsPerSecond / reportOff.perSecond),
    });
  }
  return { figures, connections: plan.connections, poolSize: plan.poolSize };
}
