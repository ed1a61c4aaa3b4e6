/**
 * How fast this machine was during a run, so that runs on different days can
 * be told apart: the same 2-core machine has served a history page in 265 µs
 * of CPU one day and in 1,300 µs another (a slower or busier host), and every
 * absolute figure moves with it while the same-run ratios mostly do not.
 *
 * - `cpuWorkMs`: a fixed piece of JavaScript (JSON in and out, objects made
 *   and dropped), best of three: the speed of this process's core and memory;
 * - `loopbackRoundTripUs`: a small message there and back over a loopback TCP
 *   connection in this process, median of 2,000: what a system call and a
 *   wake-up cost (a virtual machine's nesting shows here first);
 * - `stealPercent`: the share of CPU time the hypervisor gave to others while
 *   the run went on (/proc/stat's steal column; null off Linux).
 */
import { readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

export type MachineSpeed = { cpuWorkMs: number; loopbackRoundTripUs: number };

const round1 = (value: number) => Math.round(value * 10) / 10;

function cpuWork(): number {
  const started = performance.now();
  const item = { id: 'a1b2c3', status: 'PROCESSING', progress: 42, createdAt: '2026-11-29T12:00:00.000Z', stages: ['validation', 'retrieval', 'script'] };
  let kept = 0;
  for (let i = 0; i < 5_000; i++) {
    const page = Array.from({ length: 10 }, (_, j) => ({ ...item, progress: (i + j) % 101 }));
    kept += (JSON.parse(JSON.stringify(page)) as unknown[]).length;
  }
  if (kept !== 50_000) throw new Error('the calibration workload went wrong');
  return performance.now() - started;
}

async function loopbackRoundTrips(count: number): Promise<number[]> {
  const server = createServer((socket) => socket.on('data', (data) => socket.write(data)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client: Socket = connect(port, '127.0.0.1');
  client.setNoDelay(true);
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const sentAt = performance.now();
      await new Promise<void>((resolve) => {
        client.once('data', () => resolve());
        client.write('ping');
      });
      times.push((performance.now() - sentAt) * 1000);
    }
  } finally {
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
  return times;
}

/** Measured with nothing of the benchmark running (a second or so). */
export async function measureSpeed(): Promise<MachineSpeed> {
  const cpuWorkMs = Math.min(cpuWork(), cpuWork(), cpuWork());
  // The first 200 warm the connection and the code up: not counted.
  const times = (await loopbackRoundTrips(2_200)).slice(200).sort((a, b) => a - b);
  return { cpuWorkMs: round1(cpuWorkMs), loopbackRoundTripUs: round1(times[Math.floor(times.length / 2)]!) };
}

/** All cores' steal and total time so far (/proc/stat, in ticks), or undefined off Linux. */
export function stealTicks(): { steal: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
    return { steal: fields[7] ?? 0, total: fields.reduce((sum, value) => sum + value, 0) };
  } catch {
    return undefined;
  }
}

/** The steal share between two readings, in per cent of all CPU time; null when unknown. */
export function stealPercent(before: ReturnType<typeof stealTicks>, after: ReturnType<typeof stealTicks>): number | null {
  if (!before || !after || after.total <= before.total) return null;
  return round1((100 * (after.steal - before.steal)) / (after.total - before.total));
}
