/**
 * What every phase of the live benchmark uses: the driver, the plan and the
 * CPU meter together, a load run measured with who used the CPU, the hub
 * seen from inside the service, and the service's settled heap.
 */
import { fileURLToPath } from 'node:url';
import type { RunningApp } from '../../src/app.js';
import type { LiveEvent } from '../../src/services/live-events.js';
import { clockBase, now } from '../lib/clock.js';
import type { BenchDatabase } from '../lib/database.js';
import { settledHeapUsed } from '../lib/heap.js';
import { CpuMeter, type CpuShares } from '../lib/cpu.js';
import { forkRpcChild, type RpcChild } from '../lib/rpc.js';
import type { LoadParams, LoadResult } from './driver.js';
import type { LivePlan } from './plan.js';
import type { Seeded } from './seed.js';
import { changeKey } from './writer.js';

export type Measured = LoadResult & { cpu: CpuShares };

export type Bench = { driver: RpcChild; plan: LivePlan; meter: CpuMeter; log: (line: string) => void };

/**
 * The driver process, ready to write to the seeded requests, and the CPU
 * meter that tells it apart from the service; each close is pushed on `cleanup`.
 */
export async function startDriver(
  database: BenchDatabase,
  seeded: Seeded,
  writerConnections: number,
  cleanup: (() => Promise<void>)[],
): Promise<{ driver: RpcChild; meter: CpuMeter }> {
  const driver = forkRpcChild(fileURLToPath(new URL('./driver.ts', import.meta.url)));
  cleanup.push(() => driver.close());
  await driver.call('init', {
    databaseUrl: database.url,
    clockBase: clockBase(),
    writerConnections,
    pool: seeded.pool,
    broadcast: seeded.broadcast,
  });
  const meter = await CpuMeter.connect(database.url, database.name, driver.pid);
  cleanup.push(() => meter.close());
  return { driver, meter };
}

/** Runs one load phase in the driver, noting who used the CPU meanwhile. */
export async function measuredLoad(bench: Bench, params: LoadParams): Promise<Measured> {
  const stop = await bench.meter.start();
  const result = await bench.driver.call<LoadResult>('load', params);
  return { ...result, cpu: await stop() };
}

/** Subscribes to a hub topic in this process and notes when each change arrived there. */
export function probeHub(running: RunningApp, topic: Parameters<RunningApp['hub']['subscribe']>[0]) {
  const times = new Map<string, number>();
  const stop = running.hub.subscribe(topic, (event: LiveEvent) => {
    times.set(changeKey(event.requestId, event.sequence), now());
  });
  return { times, stop };
}

export function joinTimes(sends: [string, number][], arrivals: Map<string, number>): number[] {
  const latencies: number[] = [];
  for (const [key, sentAt] of sends) {
    const at = arrivals.get(key);
    if (at !== undefined) latencies.push(at - sentAt);
  }
  return latencies;
}

/**
 * The server's heap after full collections, with its connection pool filled
 * first: the pool closes idle connections after a while, and one that went
 * between two readings would look like freed subscriptions.
 */
export async function serverHeap(running: RunningApp): Promise<number> {
  const { database } = running;
  if (database.kind === 'postgres') {
    await Promise.all(Array.from({ length: database.pool.options.max ?? 10 }, () => database.pool.query('select 1')));
  }
  return settledHeapUsed();
}
