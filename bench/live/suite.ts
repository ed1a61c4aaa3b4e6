/**
 * The live path's figures (issue 4), each next to the same run's raw
 * LISTEN/NOTIFY baseline:
 *
 * 1. raw latency: a pg client LISTENs on the triggers' channel, no server
 *    in between; changes committed at fixed rates, one per transaction;
 * 2. commit-to-client latency through the service at the same rates, over
 *    graphql-ws: each change's contentRequestProgress subscriber and one
 *    admin contentRequestUpdates feed that sees every change;
 * 3. the most changes a second delivered without falling behind, by a ramp
 *    (and the raw ceiling by the same ramp);
 * 4. the server's heap per open subscription, and the time one change takes
 *    to reach N subscribers of one process.
 *
 * The service runs here, in-process (createApp), so its heap can be read;
 * the writer and every client run in a child process (driver.ts). Order:
 * raw latency (no server), service latency, heap and fan-out, then the ramps
 * (raw with the service stopped, then through a fresh one), and last a few
 * subscriptions opened again: the ramps grow request_events by a hundred
 * thousand rows or more, and opening a subscription costs more as it grows.
 */
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import WebSocket from 'ws';
import type { RunningApp } from '../../src/app.js';
import type { LiveEvent } from '../../src/services/feed.js';
import { clockBase, now, sleep, until } from '../lib/clock.js';
import { createBenchDatabase, type BenchDatabase } from '../lib/database.js';
import { settledHeapUsed } from '../lib/heap.js';
import { CpuMeter, type CpuShares } from '../lib/cpu.js';
import { forkRpcChild, type RpcChild } from '../lib/rpc.js';
import { benchToken, startBenchService } from '../lib/service.js';
import { round, roundSummary, summarize, type Summary } from '../lib/stats.js';
import type { FanoutRound, Integrity, LoadParams, LoadResult, Path, PathResult } from './driver.js';
import { livePlan, type LivePlan, type Mode } from './plan.js';
import { changeKey } from './writer.js';

const SERVICE_PATHS: Path[] = ['progress', 'feed'];

export type Ratio = { p50: number; p95: number; p99: number };

export type Measured = LoadResult & { cpu: CpuShares };

export type LatencyFigure = {
  rate: number;
  raw: Measured;
  service: Measured & {
    /** From just before the change was sent until the server's hub had it (its notification parsed). */
    commitToHub: Summary;
    /** Service latency over raw latency, per percentile, for each subscription kind. */
    ratio: Partial<Record<Path, Ratio>>;
  };
};

export type RampStep = {
  rate: number;
  achievedRate: number;
  transactions: number;
  meanChangesPerTransaction: number;
  commitP50: number;
  paths: Partial<Record<Path, { p50: number; p99: number; firstThirdP50: number; lastThirdP50: number; missing: number }>>;
  /** Cores used by the service (this process), the writer and clients, PostgreSQL for this database, and anything else. */
  cpu: CpuShares;
  /** The service's event loop delay, p99 in ms (service ramp only). */
  serverEventLoopDelayP99: number;
  keptUp: boolean;
  reasons: string[];
};

export type Ramp = {
  /** The highest rate that kept up (0 if none did), and what it achieved. */
  sustainedRate: number;
  sustainedAchievedRate: number;
  /** Why the next step up failed, or that the ramp reached its top. */
  limit: string;
  steps: RampStep[];
};

export type HeapFigure = {
  subscriptions: number;
  sockets: number;
  /** heapUsed growth per idle contentRequestProgress subscription, each on its own request. */
  perSubscriptionBytes: number;
  /** heapUsed growth per connected, acknowledged graphql-ws socket with no subscription. */
  perSocketBytes: number;
  /** What stays on the heap per subscription once all are closed (a leak if well above 0). */
  retainedAfterClosePerSubscriptionBytes: number;
  /** The same, for subscriptions that all follow one request (the fan-out set). */
  perSharedTopicSubscriptionBytes: number;
  hubSubscribersOpen: number;
  hubSubscribersAfterClose: number;
  /** Subscriptions opened a second (snapshot received) when opening them all at once. */
  subscribeRate: number;
  /** request_events rows when the subscriptions were opened. */
  requestEvents: number;
  /** Opening subscriptions again after the ramps (request_events much larger). */
  lateSubscribe: { subscriptions: number; subscribeRate: number; requestEvents: number };
  heapUsedBytes: { beforeSockets: number; withSockets: number; socketsOnly: number; open: number; closed: number };
};

export type FanoutFigure = {
  subscribers: number;
  sockets: number;
  rounds: number;
  /** From just before the change was sent until the first, median and last subscriber had it. */
  first: Summary;
  median: Summary;
  last: Summary;
  commitToHub: Summary;
  /** From just before the change was sent until the server had handed the first and the last subscriber's frame to its socket. */
  serverFirstSend: Summary;
  serverLastSend: Summary;
  commitMs: Summary;
  /** last.p50 over the raw baseline's p50 at the lowest fixed rate. */
  ratioToRawP50: number;
  cpu: CpuShares;
};

export type LiveResults = {
  plan: Omit<LivePlan, 'latency'> & { latency: Omit<LivePlan['latency'], 'durationMs'> & { durationMs: Record<number, number> } };
  database: string;
  setup: { seedMs: number; requests: number; liveSubscriptions: number; liveSockets: number; openLiveMs: number };
  latency: LatencyFigure[];
  throughput: { raw: Ramp; service: Ramp; ratio: number };
  heap: HeapFigure;
  fanout: FanoutFigure;
  integrity: Integrity;
  elapsedMs: number;
};

export type LiveOptions = {
  serverUrl: string;
  mode: Mode;
  log?: (line: string) => void;
};

export async function runLiveBenchmark(options: LiveOptions): Promise<LiveResults> {
  const plan = livePlan(options.mode);
  const log = options.log ?? (() => undefined);
  const started = now();
  const cleanup: (() => Promise<void>)[] = [];
  try {
    log(`creating and migrating a database on ${redact(options.serverUrl)}`);
    const database = await createBenchDatabase(options.serverUrl, 'live');
    cleanup.push(() => database.drop());

    const seedStart = now();
    const seeded = await seed(database, plan);
    const seedMs = now() - seedStart;
    log(`seeded ${seeded.total} requests in ${Math.round(seedMs)} ms`);

    const driver = forkRpcChild(fileURLToPath(new URL('./driver.ts', import.meta.url)));
    cleanup.push(() => driver.close());
    await driver.call('init', {
      databaseUrl: database.url,
      clockBase: clockBase(),
      writerConnections: plan.writerConnections,
      pool: seeded.pool,
      broadcast: seeded.broadcast,
    });
    const meter = await CpuMeter.connect(database.url, database.name, driver.pid);
    cleanup.push(() => meter.close());
    const vacuum = () => vacuumTables(database.url);
    const bench: Bench = { driver, plan, meter, log };

    // The service runs in this process; started twice, so the raw ramp runs with no server at all.
    const token = await benchToken({ sub: 'bench-admin', role: 'admin' });
    const startService = async () => {
      const { app, running } = await startBenchService(database.url);
      cleanup.push(() => app.stop());
      const openLive = () =>
        driver.call<{ sockets: number; subscriptions: number; ms: number }>('openLive', {
          serverUrl: running.url,
          token,
          subscriptionsPerSocket: plan.subscriptionsPerSocket,
        });
      return { app, running, openLive };
    };

    // 1: raw latency, nothing but PostgreSQL and one LISTENing client.
    await driver.call('listenRaw');
    const rawLatency: Measured[] = [];
    for (const rate of plan.latency.rates) {
      await vacuum();
      log(`raw LISTEN/NOTIFY latency at ${rate}/s`);
      rawLatency.push(await latencyPhase(bench, ['raw'], rate));
    }
    await driver.call('unlistenRaw');

    // 2: commit to client through the service, at the same rates.
    const first = await startService();
    log(`service at ${first.running.url}; opening ${plan.poolSize} progress subscriptions and an admin feed`);
    const liveSet = await first.openLive();
    const latency: LatencyFigure[] = [];
    for (const [i, rate] of plan.latency.rates.entries()) {
      await vacuum();
      log(`service latency at ${rate}/s`);
      const probe = probeHub(first.running, 'all');
      const service = await latencyPhase(bench, SERVICE_PATHS, rate, true);
      probe.stop();
      const raw = rawLatency[i]!;
      const { sends, ...serviceResult } = service;
      latency.push({
        rate,
        raw,
        service: {
          ...serviceResult,
          commitToHub: roundSummary(summarize(joinTimes(sends ?? [], probe.times))),
          ratio: Object.fromEntries(
            SERVICE_PATHS.map((path) => [path, ratioOf(service.paths[path]!.latency, raw.paths.raw!.latency)]),
          ),
        },
      });
    }
    await driver.call('closeLive');
    await until(() => first.running.hub.subscriberCount === 0, 10_000);

    // 4: heap per subscription, and fan-out of one change (before the ramps
    // have grown request_events: opening a subscription costs more as it grows).
    await vacuum();
    const heap = await heapPhase(bench, first.running, token, seeded);
    heap.requestEvents = await countEvents(database.url);
    const fanout = await fanoutPhase(bench, first.running, seeded, heap, rawLatency[0]!);
    heap.perSharedTopicSubscriptionBytes = fanout.perSubscriptionBytes;
    await first.app.stop();

    // 3: the ramps, raw (no server) and then through the service.
    await vacuum();
    await driver.call('listenRaw');
    const rawRamp = await ramp(bench, ['raw'], undefined);
    await driver.call('unlistenRaw');
    const second = await startService();
    await second.openLive();
    await vacuum();
    const serviceRamp = await ramp(bench, SERVICE_PATHS, { running: second.running, reopen: second.openLive });
    await driver.call('closeLive');
    await until(() => second.running.hub.subscriberCount === 0, 10_000);

    // The cost of opening a subscription once the ramps have grown request_events.
    await vacuum();
    const sample = seeded.idle.slice(0, Math.min(seeded.idle.length, plan.lateSubscribeSample));
    await driver.call('connectSockets', { serverUrl: second.running.url, token, count: Math.ceil(sample.length / plan.subscriptionsPerSocket) });
    const late = await driver.call<{ ms: number }>('subscribeIdle', { ids: sample });
    await driver.call('unsubscribeIdle');
    await driver.call('disconnectSockets');
    heap.lateSubscribe = {
      subscriptions: sample.length,
      subscribeRate: round(sample.length / (late.ms / 1000), 0),
      requestEvents: await countEvents(database.url),
    };
    log(`after the ramps: opened ${sample.length} subscriptions in ${Math.round(late.ms)} ms (${heap.lateSubscribe.requestEvents} events)`);
    await second.app.stop();

    const integrity = await driver.call<Integrity>('integrity');
    return {
      plan: { ...plan, latency: { ...plan.latency, durationMs: Object.fromEntries(plan.latency.rates.map((r) => [r, plan.latency.durationMs(r)])) } },
      database: database.name,
      setup: {
        seedMs: round(seedMs),
        requests: seeded.total,
        liveSubscriptions: liveSet.subscriptions,
        liveSockets: liveSet.sockets,
        openLiveMs: round(liveSet.ms),
      },
      latency,
      throughput: {
        raw: rawRamp,
        service: serviceRamp,
        ratio: round(rawRamp.sustainedRate ? serviceRamp.sustainedRate / rawRamp.sustainedRate : NaN),
      },
      heap,
      fanout: fanout.figure,
      integrity,
      elapsedMs: round(now() - started, 0),
    };
  } finally {
    for (const close of cleanup.reverse()) {
      await close().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
    }
  }
}

// ---------------------------------------------------------------------------
// Data

type Seeded = {
  total: number;
  pool: { id: string; sequence: number }[];
  idle: string[];
  broadcast: { id: string; sequence: number };
};

/**
 * An organization, 100 students, an admin, and the requests: the writer's
 * pool, one per idle subscription, and one every fan-out subscriber follows.
 * All pending (in flight), each with its `created` event (sequence 1).
 */
async function seed(database: BenchDatabase, plan: LivePlan): Promise<Seeded> {
  const total = plan.poolSize + plan.subscriptions + 1;
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
      broadcast: tracked(rows[total - 1]!.id),
    };
  } finally {
    await client.end();
  }
}

async function countEvents(url: string): Promise<number> {
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
async function vacuumTables(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'tracker-bench:vacuum' });
  await client.connect();
  try {
    await client.query('vacuum (analyze) content_requests, request_events');
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------
// Phases

type Bench = { driver: RpcChild; plan: LivePlan; meter: CpuMeter; log: (line: string) => void };

/** Runs one load phase in the driver, noting who used the CPU meanwhile. */
async function measuredLoad(bench: Bench, params: LoadParams): Promise<Measured> {
  const stop = await bench.meter.start();
  const result = await bench.driver.call<LoadResult>('load', params);
  return { ...result, cpu: await stop() };
}

function latencyPhase(bench: Bench, paths: Path[], rate: number, returnSends = false) {
  const { plan } = bench;
  return measuredLoad(bench, {
    paths,
    rate,
    warmupMs: plan.latency.warmupMs,
    durationMs: plan.latency.durationMs(rate),
    // Every change is its own transaction, as a worker reports one stage change at a time.
    maxBatch: 1,
    drainMs: plan.latency.drainMs,
    returnSends,
  } satisfies LoadParams);
}

/** Subscribes to a hub topic in this process and notes when each change arrived there. */
function probeHub(running: RunningApp, topic: Parameters<RunningApp['hub']['subscribe']>[0]) {
  const times = new Map<string, number>();
  const stop = running.hub.subscribe(topic, (event: LiveEvent) => {
    times.set(changeKey(event.requestId, event.sequence), now());
  });
  return { times, stop };
}

function joinTimes(sends: [string, number][], arrivals: Map<string, number>): number[] {
  const latencies: number[] = [];
  for (const [key, sentAt] of sends) {
    const at = arrivals.get(key);
    if (at !== undefined) latencies.push(at - sentAt);
  }
  return latencies;
}

function ratioOf(service: Summary, raw: Summary): Ratio {
  return { p50: round(service.p50 / raw.p50, 2), p95: round(service.p95 / raw.p95, 2), p99: round(service.p99 / raw.p99, 2) };
}

/**
 * Doubles the rate until a step falls behind, then bisects between the last
 * good and the first bad rate. A step keeps up when the writer reached 95% of
 * the rate, every change arrived on every path (within the drain time), no
 * subscription was cut, and the median latency of the step's last third is
 * not far above its first third's (a growing backlog shows there first).
 */
async function ramp(
  bench: Bench,
  paths: Path[],
  service: { running: RunningApp; reopen: () => Promise<unknown> } | undefined,
): Promise<Ramp> {
  const { driver, plan, log } = bench;
  const steps: RampStep[] = [];
  let good: RampStep | undefined;
  let bad: RampStep | undefined;
  const runStep = async (rate: number) => {
    const step = await rampStep(bench, paths, rate, service);
    steps.push(step);
    log(
      `${service ? 'service' : 'raw'} ramp ${formatRate(rate)}/s: achieved ${formatRate(step.achievedRate)}/s, ` +
        paths.map((p) => `${p} p50 ${step.paths[p]?.p50?.toFixed(1)} ms`).join(', ') +
        (step.keptUp ? ' — kept up' : ` — behind: ${step.reasons.join('; ')}`),
    );
    if (service && (!step.keptUp || (await driver.call<number>('liveEnded')) > 0)) {
      // Let the backlog clear and bring back any subscription the server cut.
      await sleep(1_000);
      await driver.call('closeLive');
      await until(() => service.running.hub.subscriberCount === 0, 10_000);
      await service.reopen();
    }
    return step;
  };
  for (let rate = plan.ramp.startRate; rate <= plan.ramp.maxRate; rate *= 2) {
    const step = await runStep(rate);
    if (step.keptUp) good = step;
    else {
      bad = step;
      break;
    }
  }
  for (let i = 0; i < plan.ramp.bisect && good && bad; i++) {
    const rate = roundRate((good.rate + bad.rate) / 2);
    if (rate <= good.rate || rate >= bad.rate) break;
    const step = await runStep(rate);
    if (step.keptUp) good = step;
    else bad = step;
  }
  return {
    sustainedRate: good?.rate ?? 0,
    sustainedAchievedRate: round(good?.achievedRate ?? 0, 0),
    limit: bad
      ? `kept up to ${formatRate(good?.rate ?? 0)}/s; behind at ${formatRate(bad.rate)}/s: ${bad.reasons.join('; ')}`
      : `kept up to the ramp's top (${formatRate(good?.rate ?? 0)}/s)`,
    steps,
  };
}

async function rampStep(
  bench: Bench,
  paths: Path[],
  rate: number,
  service: { running: RunningApp } | undefined,
): Promise<RampStep> {
  const { driver, plan } = bench;
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const result = await measuredLoad(bench, {
    paths,
    rate,
    warmupMs: 0,
    durationMs: plan.ramp.stepMs,
    maxBatch: plan.ramp.maxBatch,
    drainMs: plan.ramp.drainMs,
  });
  loopDelay.disable();
  const reasons: string[] = [];
  if (result.achievedRate < 0.95 * rate) {
    reasons.push(`the writer committed only ${formatRate(result.achievedRate)}/s (database-bound)`);
  }
  for (const path of paths) {
    const figures = result.paths[path]!;
    if (figures.missing > 0) reasons.push(`${path}: ${figures.missing} of ${figures.expected} not delivered ${plan.ramp.drainMs} ms after the step`);
    if (fellBehind(figures)) {
      reasons.push(`${path}: median lag grew from ${figures.firstThirdP50.toFixed(1)} to ${figures.lastThirdP50.toFixed(1)} ms`);
    }
  }
  if (service) {
    const ended = await driver.call<number>('liveEnded');
    if (ended > 0) reasons.push(`${ended} subscriptions cut by the server (too far behind)`);
  }
  return {
    rate,
    achievedRate: round(result.achievedRate, 0),
    transactions: result.transactions,
    meanChangesPerTransaction: round(result.changes / Math.max(1, result.transactions), 1),
    commitP50: result.commitMs.p50,
    paths: Object.fromEntries(
      paths.map((path) => {
        const f = result.paths[path]!;
        return [path, { p50: f.latency.p50, p99: f.latency.p99, firstThirdP50: round(f.firstThirdP50), lastThirdP50: round(f.lastThirdP50), missing: f.missing }];
      }),
    ),
    cpu: result.cpu,
    serverEventLoopDelayP99: service ? round(loopDelay.percentile(99) / 1e6, 1) : NaN,
    keptUp: reasons.length === 0,
    reasons,
  };
}

/** A backlog that grows during the step shows as a last third much slower than the first. */
function fellBehind(figures: PathResult): boolean {
  const { firstThirdP50: first, lastThirdP50: last } = figures;
  if (!Number.isFinite(first) || !Number.isFinite(last)) return false;
  return last - first > Math.max(25, first);
}

/**
 * The server's heap after full collections, with its connection pool filled
 * first: the pool closes idle connections after a while, and one that went
 * between two readings would look like freed subscriptions.
 */
async function serverHeap(running: RunningApp): Promise<number> {
  const { database } = running;
  if (database.kind === 'postgres') {
    await Promise.all(Array.from({ length: database.pool.options.max ?? 10 }, () => database.pool.query('select 1')));
  }
  return settledHeapUsed();
}

async function heapPhase(bench: Bench, running: RunningApp, token: string, seeded: Seeded): Promise<HeapFigure> {
  const { driver, plan, log } = bench;
  const n = seeded.idle.length;
  const sockets = Math.ceil(n / plan.subscriptionsPerSocket);
  const waitForHub = (count: number) => until(() => running.hub.subscriberCount === count, 60_000);

  // Warm up the paths a subscription takes, then let it all go.
  await driver.call('connectSockets', { serverUrl: running.url, token, count: 1 });
  await driver.call('subscribeIdle', { ids: seeded.idle.slice(0, Math.min(n, 200)) });
  await driver.call('unsubscribeIdle');
  await driver.call('disconnectSockets');
  await waitForHub(0);

  log(`heap: ${plan.socketSample} sockets without subscriptions`);
  const beforeSockets = await serverHeap(running);
  await driver.call('connectSockets', { serverUrl: running.url, token, count: plan.socketSample });
  const withSockets = await serverHeap(running);
  await driver.call('disconnectSockets');

  log(`heap: ${n} idle subscriptions on ${sockets} sockets`);
  await driver.call('connectSockets', { serverUrl: running.url, token, count: sockets });
  const socketsOnly = await serverHeap(running);
  const opened = await driver.call<{ ms: number }>('subscribeIdle', { ids: seeded.idle });
  log(`heap: opened ${n} subscriptions in ${Math.round(opened.ms)} ms`);
  await waitForHub(n);
  const hubSubscribersOpen = running.hub.subscriberCount;
  const open = await serverHeap(running);
  await driver.call('unsubscribeIdle');
  await waitForHub(0);
  const hubSubscribersAfterClose = running.hub.subscriberCount;
  const closed = await serverHeap(running);
  // The sockets stay for the fan-out phase.
  return {
    subscriptions: n,
    sockets,
    perSubscriptionBytes: Math.round((open - socketsOnly) / n),
    perSocketBytes: Math.round((withSockets - beforeSockets) / plan.socketSample),
    retainedAfterClosePerSubscriptionBytes: Math.round((closed - socketsOnly) / n),
    perSharedTopicSubscriptionBytes: NaN,
    hubSubscribersOpen,
    hubSubscribersAfterClose,
    subscribeRate: round(n / (opened.ms / 1000), 0),
    requestEvents: NaN,
    lateSubscribe: { subscriptions: 0, subscribeRate: NaN, requestEvents: NaN },
    heapUsedBytes: { beforeSockets, withSockets, socketsOnly, open, closed },
  };
}

/**
 * Notes the time of every WebSocket frame the server sends, by wrapping
 * `ws`'s send in this process (the server's sockets are `ws` sockets): when
 * the server had sent a change to its last subscriber, apart from when the
 * client process had read it.
 */
function recordServerSends() {
  const prototype = WebSocket.prototype as unknown as { send: (...args: unknown[]) => void };
  const original = prototype.send;
  const times: number[] = [];
  prototype.send = function send(this: unknown, ...args: unknown[]) {
    times.push(now());
    return original.apply(this, args);
  };
  return {
    times,
    stop: () => {
      prototype.send = original;
    },
  };
}

async function fanoutPhase(
  bench: Bench,
  running: RunningApp,
  seeded: Seeded,
  heap: HeapFigure,
  rawBaseline: LoadResult,
): Promise<{ figure: FanoutFigure; perSubscriptionBytes: number }> {
  const { driver, plan, log } = bench;
  const n = seeded.idle.length;
  log(`fan-out: ${n} subscribers of one request`);
  const before = await serverHeap(running);
  const opened = await driver.call<{ ms: number }>('subscribeIdle', { ids: Array.from({ length: n }, () => seeded.broadcast.id) });
  log(`fan-out: opened ${n} subscriptions in ${Math.round(opened.ms)} ms`);
  await until(() => running.hub.subscriberCount === n, 60_000);
  const after = await serverHeap(running);
  const probe = probeHub(running, `request:${seeded.broadcast.id}`);
  const sends = recordServerSends();
  const stopMeter = await bench.meter.start();
  let rounds: FanoutRound[];
  try {
    rounds = await driver.call<FanoutRound[]>('fanout', {
      rounds: plan.fanout.rounds,
      warmupRounds: plan.fanout.warmupRounds,
      timeoutMs: 60_000,
    });
  } finally {
    sends.stop();
    probe.stop();
  }
  const cpu = await stopMeter();
  await driver.call('unsubscribeIdle');
  await driver.call('disconnectSockets');
  // The server's first and last send of each round: the 1st and n-th frame sent after the change was.
  const serverFirstSend: number[] = [];
  const serverLastSend: number[] = [];
  for (const round of rounds) {
    const first = sends.times.findIndex((at) => at >= round.sentAt);
    const last = sends.times[first + n - 1];
    if (first < 0 || last === undefined) continue;
    serverFirstSend.push(sends.times[first]! - round.sentAt);
    serverLastSend.push(last - round.sentAt);
  }
  const last = roundSummary(summarize(rounds.map((r) => r.last)));
  return {
    perSubscriptionBytes: Math.round((after - before) / n),
    figure: {
      subscribers: n,
      sockets: heap.sockets,
      rounds: rounds.length,
      first: roundSummary(summarize(rounds.map((r) => r.first))),
      median: roundSummary(summarize(rounds.map((r) => r.p50))),
      last,
      commitToHub: roundSummary(
        summarize(joinTimes(rounds.map((r) => [changeKey(seeded.broadcast.id, r.sequence), r.sentAt]), probe.times)),
      ),
      serverFirstSend: roundSummary(summarize(serverFirstSend)),
      serverLastSend: roundSummary(summarize(serverLastSend)),
      commitMs: roundSummary(summarize(rounds.map((r) => r.commitMs))),
      ratioToRawP50: round(last.p50 / rawBaseline.paths.raw!.latency.p50, 1),
      cpu,
    },
  };
}

// ---------------------------------------------------------------------------

function roundRate(rate: number): number {
  const magnitude = 10 ** Math.max(0, Math.floor(Math.log10(rate)) - 1);
  return Math.round(rate / magnitude) * magnitude;
}

function formatRate(rate: number): string {
  return Math.round(rate).toLocaleString('en-US');
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
