/**
 * `node --expose-gc --import tsx bench/live/fanout-only.ts [--quick | --tiny] [--rounds 10] [--profile out.cpuprofile]`
 *
 * Only the live suite's fan-out (bench/live/fanout.ts): N subscribers of one
 * request on N/100 sockets (the driver's, in its own process), then one change
 * of it per round. Prints each round's times after the change was sent: when
 * the service's hub had dispatched it to every stream, when the service handed
 * its first and last frame to a socket, when the clients had the first, median
 * and last; and the CPU the service and the driver used per round. With
 * --profile, a CPU profile of the service taken only during the rounds.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { CpuMeter } from '../lib/cpu.js';
import { now, until } from '../lib/clock.js';
import { round } from '../lib/stats.js';
import type { FanoutRound, Integrity } from './driver.js';
import { recordServerSends } from './fanout.js';
import { startHeapBench } from './heap-setup.js';
import { probeHub } from './phase.js';
import { livePlan } from './plan.js';
import { changeKey } from './writer.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    profile: { type: 'string' },
  },
});
const plan = livePlan(values.tiny ? 'tiny' : values.quick ? 'quick' : 'full');
const rounds = Number(values.rounds ?? plan.fanout.rounds);
const log = (line: string) => console.error(line);
const bench = await startHeapBench(plan, 'fanout', log);
try {
  const { driver, running, token, seeded, database } = bench;
  const meter = await CpuMeter.connect(database.url, database.name, driver.pid);
  bench.cleanup.push(() => meter.close());
  const n = plan.subscriptions;
  await driver.call('connectSockets', { serverUrl: running.url, token, count: Math.ceil(n / plan.subscriptionsPerSocket) });
  await driver.call('subscribeIdle', { ids: Array.from({ length: n }, () => seeded.broadcast.id) });
  await until(() => running.hub.subscriberCount === n, 60_000);
  log(`fan-out: ${n} subscribers of one request`);
  await driver.call('fanout', { rounds: 0, warmupRounds: plan.fanout.warmupRounds, timeoutMs: 60_000 });

  // Subscribed after every stream: the hub calls it last, once all of them had the event.
  const probe = probeHub(running, `request:${seeded.broadcast.id}`);
  const sends = recordServerSends();
  const session = new Session();
  if (values.profile) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  const stopMeter = await meter.start();
  const started = now();
  const cpuBefore = process.cpuUsage();
  let results: FanoutRound[];
  try {
    results = await driver.call<FanoutRound[]>('fanout', { rounds, warmupRounds: 0, timeoutMs: 60_000 });
  } finally {
    sends.stop();
    probe.stop();
  }
  const cpuUs = process.cpuUsage(cpuBefore);
  const seconds = (now() - started) / 1000;
  const cpu = await stopMeter();
  if (values.profile) {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(values.profile, JSON.stringify(profile));
  }
  for (const r of results) {
    const first = sends.times.findIndex((at) => at >= r.sentAt);
    const hub = probe.times.get(changeKey(seeded.broadcast.id, r.sequence));
    console.log(
      JSON.stringify({
        hubDispatched: hub === undefined ? null : round(hub - r.sentAt, 1),
        serverFirstSend: round(sends.times[first]! - r.sentAt, 1),
        serverLastSend: round(sends.times[first + n - 1]! - r.sentAt, 1),
        clientFirst: round(r.first, 1),
        clientMedian: round(r.p50, 1),
        clientLast: round(r.last, 1),
        commitMs: round(r.commitMs, 1),
      }),
    );
  }
  console.log(
    JSON.stringify({
      subscribers: n,
      rounds,
      // Includes the 100 ms pause between rounds and the writer's commits.
      serviceCpuMsPerRound: round((cpuUs.user + cpuUs.system) / 1000 / rounds, 1),
      driverCpuMsPerRound: round((cpu.driver * seconds * 1000) / rounds, 1),
      otherCores: round(cpu.other, 2),
    }),
  );
  // Every subscriber had each change once and in order, and none was ended.
  console.log(JSON.stringify({ integrity: await driver.call<Integrity>('integrity') }));
  await driver.call('unsubscribeIdle');
  await driver.call('disconnectSockets');
} finally {
  await bench.close();
}
