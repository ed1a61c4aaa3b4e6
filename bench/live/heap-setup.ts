/**
 * What the heap tools (heap-only.ts, heap-snapshots.ts) start before they
 * measure: their own database with the live suite's seed, the driver process
 * and the service, as the live suite starts them. `close()` undoes it all.
 */
import { fileURLToPath } from 'node:url';
import { clockBase } from '../lib/clock.js';
import { createBenchDatabase, DEFAULT_SERVER_URL, type BenchDatabase } from '../lib/database.js';
import { forkRpcChild } from '../lib/rpc.js';
import { benchToken, startBenchService } from '../lib/service.js';
import type { LivePlan } from './plan.js';
import { seed } from './seed.js';

export async function startHeapBench(plan: LivePlan, databaseName: string, log: (line: string) => void) {
  const database: BenchDatabase = await createBenchDatabase(process.env.DATABASE_URL || DEFAULT_SERVER_URL, databaseName);
  const cleanup: (() => Promise<void>)[] = [() => database.drop()];
  const close = async () => {
    for (const step of cleanup.reverse()) await step().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
  };
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
    const { app, running } = await startBenchService(database.url);
    cleanup.push(() => app.stop());
    const token = await benchToken({ sub: 'bench-admin', role: 'admin' });
    return { database, seeded, driver, running, token, cleanup, close };
  } catch (error) {
    await close();
    throw error;
  }
}
