/**
 * The live path's figures, each next to the same run's raw
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
import { now, until } from '../lib/clock.js';
import { createBenchDatabase } from '../lib/database.js';
import { benchToken, startBenchService } from '../lib/service.js';
import { round, roundSummary, summarize } from '../lib/stats.js';
import type { Integrity, Path } from './driver.js';
import { livePlan, type LivePlan, type Mode } from './plan.js';
import { fanoutPhase, type FanoutFigure } from './fanout.js';
import { heapPhase, type HeapFigure } from './heap.js';
import { latencyPhase, ratioOf, type LatencyFigure } from './latency.js';
import { joinTimes, probeHub, startDriver, type Bench, type Measured } from './phase.js';
import { ramp, type Ramp } from './ramp.js';
import { countEvents, seed, vacuumTables } from './seed.js';

export type { FanoutFigure } from './fanout.js';
export type { HeapFigure } from './heap.js';
export type { LatencyFigure, Ratio } from './latency.js';
export type { Measured } from './phase.js';
export type { Ramp, RampStep } from './ramp.js';

const SERVICE_PATHS: Path[] = ['progress', 'feed'];

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

    const { driver, meter } = await startDriver(database, seeded, plan.writerConnections, cleanup);
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

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

