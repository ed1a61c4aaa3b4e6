/**
 * `node --expose-gc --import tsx bench/live/ceiling-only.ts [--rates 1500,3000] [--step-ms 4000] [--rounds 2] [--warmup-ms 1000] [--profile out.cpuprofile]`
 *
 * The ramp's load at fixed rates, without the ramp's search: the live
 * suite's database, seed, driver and service as the suite starts them, its
 * 1,000 progress subscriptions and admin feed open, then each rate for one
 * step (the writer grouping what is due as in the ramp). Prints the service's
 * CPU per change delivered, which a shared machine moves far less than the
 * rate where lag starts to grow; with --profile, a CPU profile of the service
 * taken only while the steps run.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createBenchDatabase, DEFAULT_SERVER_URL } from '../lib/database.js';
import { benchToken, startBenchService } from '../lib/service.js';
import { round } from '../lib/stats.js';
import type { Integrity } from './driver.js';
import { measuredLoad, startDriver } from './phase.js';
import { livePlan } from './plan.js';
import { seed, vacuumTables } from './seed.js';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '1500,3000' },
    'step-ms': { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '2' },
    'warmup-ms': { type: 'string', default: '1000' },
    profile: { type: 'string' },
  },
});
const plan = livePlan('quick');
const log = (line: string) => console.error(line);
const database = await createBenchDatabase(process.env.DATABASE_URL || DEFAULT_SERVER_URL, 'ceiling');
const cleanup: (() => Promise<void>)[] = [() => database.drop()];
try {
  const seeded = await seed(database, plan);
  const { driver, meter } = await startDriver(database, seeded, plan.writerConnections, cleanup);
  const { app, running } = await startBenchService(database.url);
  cleanup.push(() => app.stop());
  const token = await benchToken({ sub: 'bench-admin', role: 'admin' });
  await driver.call('openLive', { serverUrl: running.url, token, subscriptionsPerSocket: plan.subscriptionsPerSocket });
  const bench = { driver, plan, meter, log };
  // Warm-up: the first changes compile the paths they take.
  const warmupMs = Number(values['warmup-ms']);
  if (warmupMs > 0) {
    await measuredLoad(bench, { paths: ['progress', 'feed'], rate: 500, warmupMs: 0, durationMs: warmupMs, maxBatch: plan.ramp.maxBatch, drainMs: 3_000 });
  }

  const session = new Session();
  if (values.profile) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 500 });
  }
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const rate of values.rates.split(',').map(Number)) {
      await vacuumTables(database.url);
      const delivered = running.hub.stats.delivered;
      const cpuBefore = process.cpuUsage();
      const loopDelay = monitorEventLoopDelay({ resolution: 1 });
      loopDelay.enable();
      if (values.profile) await session.post('Profiler.start');
      const result = await measuredLoad(bench, {
        paths: ['progress', 'feed'],
        rate,
        warmupMs: 0,
        durationMs: Number(values['step-ms']),
        maxBatch: plan.ramp.maxBatch,
        drainMs: plan.ramp.drainMs,
      });
      if (values.profile) {
        const { profile } = await session.post('Profiler.stop');
        await writeFile(`${values.profile.replace(/\.cpuprofile$/, '')}-${rate}-${r}.cpuprofile`, JSON.stringify(profile));
      }
      const cpu = process.cpuUsage(cpuBefore);
      loopDelay.disable();
      const loopDelayP99 = round(loopDelay.percentile(99) / 1e6, 1);
      const events = running.hub.stats.delivered - delivered;
      const { progress, feed } = result.paths;
      console.log(
        JSON.stringify({
          rate,
          loopDelayP99,
          achieved: round(result.achievedRate, 0),
          changesPerTx: round(result.changes / Math.max(1, result.transactions), 1),
          events,
          serviceCpuUsPerEvent: round((cpu.user + cpu.system) / Math.max(1, events), 1),
          cores: { service: round(result.cpu.server), clients: round(result.cpu.driver), postgres: round(result.cpu.postgres), other: round(result.cpu.other) },
          progress: { p50: progress?.latency.p50, lag: [progress?.firstThirdP50, progress?.lastThirdP50], missing: progress?.missing },
          feed: { p50: feed?.latency.p50, lag: [feed?.firstThirdP50, feed?.lastThirdP50], missing: feed?.missing },
        }),
      );
    }
  }
  const integrity = await driver.call<Integrity>('integrity');
  // recovered: events the hub read back from the table instead of taking them from their notification.
  console.log(JSON.stringify({ integrity, hub: running.hub.stats }));
  await driver.call('closeLive');
} finally {
  for (const close of cleanup.reverse()) await close().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
}
