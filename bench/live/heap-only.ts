/**
 * `node --expose-gc --import tsx bench/live/heap-only.ts [--quick | --tiny] [--rounds 2]`
 *
 * Only the live suite's heap phase (bench/live/heap.ts): its own database,
 * the seed, the driver and the service as the suite starts them, no latency
 * phases, ramps or fan-out. Seconds in quick mode instead of minutes, for
 * before/after comparisons of what one idle subscription holds. Prints the
 * figure of each round (rounds show the noise) and drops the database.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { clockBase } from '../lib/clock.js';
import { CpuMeter } from '../lib/cpu.js';
import { createBenchDatabase, DEFAULT_SERVER_URL } from '../lib/database.js';
import { forkRpcChild } from '../lib/rpc.js';
import { benchToken, startBenchService } from '../lib/service.js';
import { heapPhase } from './heap.js';
import { livePlan } from './plan.js';
import { seed } from './seed.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '1' },
  },
});
const plan = livePlan(values.tiny ? 'tiny' : values.quick ? 'quick' : 'full');
const log = (line: string) => console.error(line);
const database = await createBenchDatabase(process.env.DATABASE_URL || DEFAULT_SERVER_URL, 'heap');
const cleanup: (() => Promise<void>)[] = [() => database.drop()];
try {
  const seeded = await seed(database, plan);
  const driver = forkRpcChild(fileURLToPath(new URL('./driver.ts', import.meta.url)));
  cleanup.push(() => driver.close());
  await driver.call('init', {
    databaseUrl: database.url,
    clockBase: clockBase(),
    writerConnections: 1,
    pool: seeded.pool,
    broadcast: seeded.broadcast,
  });
  const meter = await CpuMeter.connect(database.url, database.name, driver.pid);
  cleanup.push(() => meter.close());
  const { app, running } = await startBenchService(database.url);
  cleanup.push(() => app.stop());
  const token = await benchToken({ sub: 'bench-admin', role: 'admin' });
  for (let round = 0; round < Number(values.rounds); round++) {
    const figure = await heapPhase({ driver, plan, meter, log }, running, token, seeded);
    await driver.call('disconnectSockets');
    const { subscriptions, sockets, perSubscriptionBytes, perSocketBytes, retainedAfterClosePerSubscriptionBytes } = figure;
    const { hubSubscribersOpen, hubSubscribersAfterClose, subscribeRate } = figure;
    console.log(
      JSON.stringify({
        mode: plan.mode,
        subscriptions,
        sockets,
        perSubscriptionBytes,
        perSocketBytes,
        retainedAfterClosePerSubscriptionBytes,
        hubSubscribersOpen,
        hubSubscribersAfterClose,
        subscribeRate,
      }),
    );
  }
} finally {
  for (const close of cleanup.reverse()) await close().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
}
