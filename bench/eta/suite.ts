/**
 * ETA accuracy. A simulated history of completed requests
 * is written into a fresh database; the service's own estimates job
 * (refreshStageEstimates) turns it into per-stage medians; then requests from
 * the same simulation, not in the history, are estimated with the service's
 * own secondsRemaining() at the start and at the midpoint of each stage, and
 * compared with when they actually finished. Next to it, the naive baseline:
 * the sum of the expected durations still ahead (pipeline_stage_definitions).
 *
 * The simulation: a stage takes its expected duration × the organization's
 * pace × the request's size × log-normal noise (σ 0.45). Organizations'
 * paces are log-normal around 1 and one in five is 1.8 times slower; how
 * many requests each sends falls off with the square of its rank, so some have too little
 * history for an estimate of their own. Seeded: every run draws the same.
 */
import pg from 'pg';
import { connectPostgres } from '../../src/db/client.js';
import { listPipelineStages } from '../../src/services/pipeline.js';
import { loadStageEstimates, refreshStageEstimates, secondsRemaining } from '../../src/services/eta.js';
import { createBenchDatabase } from '../lib/database.js';
import type { Mode } from '../live/plan.js';

export type EtaPlan = { mode: Mode; organizations: number; historyRequests: number; testRequests: number };

export function etaPlan(mode: Mode): EtaPlan {
  if (mode === 'full') return { mode, organizations: 60, historyRequests: 100_000, testRequests: 10_000 };
  if (mode === 'quick') return { mode, organizations: 40, historyRequests: 20_000, testRequests: 4_000 };
  return { mode, organizations: 8, historyRequests: 1_000, testRequests: 200 };
}

/** Mean absolute error, in seconds, of the time left at one checkpoint. */
export type EtaCheckpoint = {
  stage: string;
  at: 'start' | 'halfway';
  n: number;
  etaMae: number;
  /** The same estimate from everyone's medians only: what the per-organization estimates add. */
  everyoneMae: number;
  naiveMae: number;
  /** etaMae / naiveMae */
  ratio: number;
};

export type EtaResults = {
  plan: EtaPlan;
  database: string;
  historyStages: number;
  /** Organizations with estimates of their own, and how many test estimates used them. */
  organizationsWithOwnEstimates: number;
  testRequestsWithOwnEstimates: number;
  refreshMs: number;
  checkpoints: EtaCheckpoint[];
  /** Over every checkpoint. */
  overall: { etaMae: number; everyoneMae: number; naiveMae: number; ratio: number };
};

const NOISE_SIGMA = 0.45;
const WINDOW_DAYS = 7;

/** mulberry32: a small seeded generator, so every run simulates the same history. */
function seededRandom(seed: number) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  // Box–Muller.
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

type SimulatedRequest = { organizationId: string; durations: number[] };

export async function runEtaBenchmark(options: { serverUrl: string; mode: Mode; log?: (line: string) => void }): Promise<EtaResults> {
  const plan = etaPlan(options.mode);
  const log = options.log ?? (() => undefined);
  const benchDatabase = await createBenchDatabase(options.serverUrl, 'eta');
  const database = connectPostgres({ url: benchDatabase.url, poolSize: 2, applicationName: 'tracker-bench:eta' });
  try {
    const pipeline = await listPipelineStages(database.db);
    const random = seededRandom(12);
    const organizations = Array.from({ length: plan.organizations }, (_, i) => ({
      id: `bench-eta-org-${i + 1}`,
      pace: Math.exp(0.25 * random.normal()) * (i % 5 === 2 ? 1.8 : 1),
      weight: 1 / (i + 1) ** 2,
    }));
    const totalWeight = organizations.reduce((sum, org) => sum + org.weight, 0);
    const pickOrganization = () => {
      let left = random.uniform() * totalWeight;
      for (const org of organizations) if ((left -= org.weight) <= 0) return org;
      return organizations.at(-1)!;
    };
    const simulate = (): SimulatedRequest => {
      const org = pickOrganization();
      const size = Math.exp(0.2 * random.normal());
      return {
        organizationId: org.id,
        durations: pipeline.map((stage) => stage.expectedDurationSeconds * org.pace * size * Math.exp(NOISE_SIGMA * random.normal())),
      };
    };

    log(`writing a history of ${plan.historyRequests.toLocaleString('en-US')} completed requests`);
    const history = Array.from({ length: plan.historyRequests }, simulate);
    await writeHistory(benchDatabase.url, organizations.map((org) => org.id), pipeline.map((stage) => stage.stageName), history);

    const started = performance.now();
    await refreshStageEstimates(database.db, WINDOW_DAYS);
    const refreshMs = performance.now() - started;
    const estimates = await loadStageEstimates(database.db);
    const everyoneOnly = { everyone: estimates.everyone, byOrganization: new Map() };
    log(`estimates refreshed in ${Math.round(refreshMs)} ms; ${estimates.byOrganization.size} organizations have their own`);

    const now = new Date();
    const sums = new Map<string, { n: number; eta: number; everyone: number; naive: number }>();
    let withOwn = 0;
    for (let t = 0; t < plan.testRequests; t++) {
      const request = simulate();
      if (estimates.byOrganization.has(request.organizationId)) withOwn++;
      for (let k = 0; k < pipeline.length; k++) {
        for (const at of ['start', 'halfway'] as const) {
          const elapsed = at === 'start' ? 0 : request.durations[k]! / 2;
          const actual = request.durations.slice(k).reduce((a, b) => a + b, 0) - elapsed;
          const stages = pipeline.slice(0, k + 1).map((stage, j) => ({
            stageName: stage.stageName,
            status: j < k ? ('completed' as const) : ('in_progress' as const),
            progressPercentage: j < k ? 100 : at === 'start' ? 0 : 50,
            startedAt: j < k ? null : new Date(now.getTime() - elapsed * 1000),
          }));
          const subject = { organizationId: request.organizationId, stages };
          const eta = secondsRemaining(subject, pipeline, estimates, now);
          const everyone = secondsRemaining(subject, pipeline, everyoneOnly, now);
          const naive = Math.max(0, pipeline[k]!.expectedDurationSeconds - elapsed) +
            pipeline.slice(k + 1).reduce((sum, stage) => sum + stage.expectedDurationSeconds, 0);
          const key = `${pipeline[k]!.stageName}\u0000${at}`;
          const entry = sums.get(key) ?? { n: 0, eta: 0, everyone: 0, naive: 0 };
          entry.n++;
          entry.eta += Math.abs(eta - actual);
          entry.everyone += Math.abs(everyone - actual);
          entry.naive += Math.abs(naive - actual);
          sums.set(key, entry);
        }
      }
    }
    const checkpoints = [...sums].map(([key, entry]): EtaCheckpoint => {
      const [stage, at] = key.split('\u0000') as [string, 'start' | 'halfway'];
      const etaMae = entry.eta / entry.n;
      const naiveMae = entry.naive / entry.n;
      return { stage, at, n: entry.n, etaMae, everyoneMae: entry.everyone / entry.n, naiveMae, ratio: etaMae / naiveMae };
    });
    const all = checkpoints.reduce(
      (acc, c) => ({ n: acc.n + c.n, eta: acc.eta + c.etaMae * c.n, everyone: acc.everyone + c.everyoneMae * c.n, naive: acc.naive + c.naiveMae * c.n }),
      { n: 0, eta: 0, everyone: 0, naive: 0 },
    );
    return {
      plan,
      database: benchDatabase.name,
      historyStages: history.length * pipeline.length,
      organizationsWithOwnEstimates: estimates.byOrganization.size,
      testRequestsWithOwnEstimates: withOwn,
      refreshMs,
      checkpoints,
      overall: { etaMae: all.eta / all.n, everyoneMae: all.everyone / all.n, naiveMae: all.naive / all.n, ratio: all.eta / all.naive },
    };
  } finally {
    await database.close();
    await benchDatabase.drop();
  }
}

/**
 * The history as completed requests and stages, triggers off (as
 * bench/data/load.ts loads), finished over the last few days: inside the
 * estimates' window.
 */
async function writeHistory(url: string, organizationIds: string[], stageNames: string[], history: SimulatedRequest[]) {
  const client = new pg.Client({ connectionString: url, application_name: 'tracker-bench:eta-load' });
  await client.connect();
  try {
    await client.query(`set session_replication_role = replica`);
    await client.query(
      `insert into organizations (organization_id, name) select id, id from unnest($1::text[]) as id`,
      [organizationIds],
    );
    await client.query(
      `insert into users (user_id, name, role, organization_id) select 'student-' || id, id, 'student', id from unnest($1::text[]) as id`,
      [organizationIds],
    );
    const BATCH = 5_000;
    for (let offset = 0; offset < history.length; offset += BATCH) {
      const batch = history.slice(offset, offset + BATCH);
      const ordinals = batch.map((_, i) => offset + i);
      const durations = batch.map((request) => request.durations);
      // Request i finished (i / n) of six days ago; its stages ran back to back before that.
      await client.query(
        `with requests as (
           select ordinal, org, gen_random_uuid() as id,
                  now() - make_interval(secs => 6 * 86400.0 * ordinal / $4::int) as finished
             from unnest($1::int[], $2::text[]) as r(ordinal, org)
         ), inserted as (
           insert into content_requests (id, correlation_id, student_id, organization_id, topic, student_query,
                                         status, progress_percentage, created_at, started_at, completed_at)
           select id, 'bench-eta-' || ordinal, 'student-' || org, org, 'Tides', 'Why two tides a day?',
                  'completed', 100, finished - interval '1 hour', finished - interval '1 hour', finished
             from requests
           returning id
         )
         insert into request_stages (request_id, stage_name, status, progress_percentage, started_at, completed_at, duration_seconds)
         select r.id, d.stage_name, 'completed', 100,
                r.finished - make_interval(secs => d.after_start), r.finished - make_interval(secs => d.after_start - d.seconds), d.seconds
           from requests r
           cross join lateral (
             select stage_name, seconds,
                    sum(seconds) over (order by k desc rows between unbounded preceding and current row) as after_start
               from unnest($5::text[], ($3::float8[][])[r.ordinal - $6::int + 1:r.ordinal - $6::int + 1][1:]) with ordinality as x(stage_name, seconds, k)
           ) d`,
        [ordinals, batch.map((request) => request.organizationId), durations, history.length, stageNames, offset],
      );
    }
    await client.query(`reset session_replication_role`);
    await client.query(`vacuum (analyze) request_stages`);
  } finally {
    await client.end();
  }
}
