/**
 * `node --expose-gc --import tsx bench/live/heap-snapshots.ts [--quick] [--out /tmp/heap]`
 *
 * Heap snapshots of the service with its idle sockets connected, before and
 * after opening the heap phase's idle subscriptions (as heap.ts opens them),
 * for bench/live/heap-diff.ts to attribute what one subscription holds.
 */
import { writeHeapSnapshot } from 'node:v8';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { until } from '../lib/clock.js';
import { serverHeap } from './phase.js';
import { livePlan } from './plan.js';
import { startHeapBench } from './heap-setup.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    out: { type: 'string', default: '.' },
  },
});
const plan = livePlan(values.tiny ? 'tiny' : values.quick ? 'quick' : 'full');
const log = (line: string) => console.error(line);
const bench = await startHeapBench(plan, 'heapsnap', log);
try {
  const { driver, running, token, seeded } = bench;
  const idle = seeded.heapIdle;
  const waitForHub = (count: number) => until(() => running.hub.subscriberCount === count, 60_000);
  // Warm up as heap.ts does.
  await driver.call('connectSockets', { serverUrl: running.url, token, count: 1 });
  await driver.call('subscribeIdle', { ids: idle.slice(0, Math.min(idle.length, 200)) });
  await driver.call('unsubscribeIdle');
  await driver.call('disconnectSockets');
  await waitForHub(0);
  await driver.call('connectSockets', { serverUrl: running.url, token, count: Math.ceil(idle.length / plan.subscriptionsPerSocket) });
  const before = await serverHeap(running);
  const beforeFile = writeHeapSnapshot(join(values.out, 'before.heapsnapshot'));
  await driver.call('subscribeIdle', { ids: idle });
  await waitForHub(idle.length);
  const open = await serverHeap(running);
  const openFile = writeHeapSnapshot(join(values.out, 'open.heapsnapshot'));
  log(`${idle.length} subscriptions: heapUsed ${Math.round((open - before) / idle.length)} B each; ${beforeFile} ${openFile}`);
  await driver.call('unsubscribeIdle');
  await driver.call('disconnectSockets');
} finally {
  await bench.close();
}
