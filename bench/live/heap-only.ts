/**
 * `node --expose-gc --import tsx bench/live/heap-only.ts [--quick | --tiny] [--rounds 2]`
 *
 * Only the live suite's heap phase (bench/live/heap.ts): its own database,
 * the seed, the driver and the service as the suite starts them, no latency
 * phases, ramps or fan-out. Seconds in quick mode instead of minutes, for
 * before/after comparisons of what one idle subscription holds. Prints the
 * figure of each round (rounds show the noise) and drops the database.
 */
import { parseArgs } from 'node:util';
import { CpuMeter } from '../lib/cpu.js';
import { heapPhase } from './heap.js';
import { livePlan } from './plan.js';
import { startHeapBench } from './heap-setup.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '1' },
  },
});
const plan = livePlan(values.tiny ? 'tiny' : values.quick ? 'quick' : 'full');
const log = (line: string) => console.error(line);
const bench = await startHeapBench(plan, 'heap', log);
const { cleanup } = bench;
try {
  const { driver, running, token, seeded, database } = bench;
  const meter = await CpuMeter.connect(database.url, database.name, driver.pid);
  cleanup.push(() => meter.close());
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
  await bench.close();
}
