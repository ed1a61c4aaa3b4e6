/**
 * The at-scale suites, on one database loaded once per run
 * (loading a million requests is the slow part, so they share it):
 *
 * - data:    the loader's own rates (bench/data/load.ts);
 * - queries: the seed's query patterns, each as SQL on one connection and as
 *            the GraphQL operation that serves it, through the running
 *            service over HTTP (sequential, from the client process), with
 *            the plan's node types from EXPLAIN (ANALYZE, FORMAT JSON);
 * - peer:    the same history-page query from the service and from
 *            PostGraphile 5 and 4 (bench/scale/peer.ts), same concurrency,
 *            same pool size;
 * - writes:  submitContentRequest and reportStage through the API under
 *            concurrent load (autocannon, from the client process), then the
 *            same change as raw SQL from as many connections as the
 *            service's pool, with the triggers on and off;
 * - stalls:  the stall check's candidate query with and without its partial
 *            index, and the check's statements (bench/scale/stalls.ts). It
 *            marks stages and writes events, so it runs last.
 *
 * The service runs in this process (createApp, as `npm start` runs it); the
 * load generator and PostGraphile run in child processes.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { CpuMeter } from '../lib/cpu.js';
import { createBenchDatabase, type BenchDatabase } from '../lib/database.js';
import { forkRpcChild } from '../lib/rpc.js';
import { startBenchService } from '../lib/service.js';
import { loadData, type LoadResult } from '../data/load.js';
import type { Mode } from '../live/plan.js';
import { scalePlan, type ScalePlan } from './plan.js';
import { measurePeer, type PeerFigure } from './peer.js';
import { measureQueries, type QueryFigure } from './queries.js';
import { drawSamples } from './samples.js';
import { measureWrites, type WriteFigure } from './writes.js';
import { measureStalls, type StallFigure } from './stalls.js';

export type { Throughput } from './client.js';
export type { PeerFigure } from './peer.js';
export type { PlanSummary, QueryFigure } from './queries.js';
export type { RawRate, WriteFigure } from './writes.js';

export const SCALE_SUITES = ['data', 'queries', 'peer', 'writes', 'stalls'] as const;
export type ScaleSuiteName = (typeof SCALE_SUITES)[number];

export type ScaleResults = {
  plan: ScalePlan;
  database: string;
  data: LoadResult;
  queries?: { figures: QueryFigure[]; findings: string[] };
  peer?: PeerFigure;
  writes?: { figures: WriteFigure[]; connections: number; poolSize: number };
  stalls?: StallFigure;
  elapsedMs: number;
};

export type ScaleOptions = {
  serverUrl: string;
  mode: Mode;
  suites: readonly ScaleSuiteName[];
  log?: (line: string) => void;
};

export async function runScaleBenchmark(options: ScaleOptions): Promise<ScaleResults> {
  const plan = scalePlan(options.mode);
  const log = options.log ?? (() => undefined);
  const started = performance.now();
  const cleanup: (() => Promise<void>)[] = [];
  let database: BenchDatabase | undefined;
  try {
    database = await createBenchDatabase(options.serverUrl, 'scale');
    cleanup.push(() => database!.drop());
    log(`database ${database.name}; loading ${plan.requests.toLocaleString('en-US')} requests` +
      (plan.mode === 'full' ? '' : ` (${plan.mode} mode: scaled down from 1,000,000)`));
    const data = await loadData({
      url: database.url,
      requests: plan.requests,
      students: plan.students,
      organizations: plan.organizations,
      log,
    });
    log(`loaded in ${(data.totalMs / 1000).toFixed(1)} s (${data.totalRowsPerSecond.toLocaleString('en-US')} rows/s all told)`);

    const client = forkRpcChild(fileURLToPath(new URL('./client.ts', import.meta.url)));
    cleanup.push(() => client.close());
    const sql = new pg.Client({ connectionString: database.url, application_name: 'tracker-bench:sql' });
    await sql.connect();
    cleanup.push(() => sql.end());
    const cpu = await CpuMeter.connect(options.serverUrl, database.name, client.pid);
    cleanup.push(() => cpu.close());
    const samples = await drawSamples(sql, plan);

    let service: { url: string; stop(): Promise<void> } | undefined;
    const startService = async () => {
      const started = await startBenchService(database!.url, { DATABASE_POOL_SIZE: String(plan.poolSize) });
      service = { url: `${started.running.url}/graphql`, stop: started.stop };
      return service;
    };
    const stopService = async () => {
      await service?.stop();
      service = undefined;
    };
    cleanup.push(stopService);

    const results: ScaleResults = { plan, database: database.name, data, elapsedMs: 0 };
    const wants = (name: ScaleSuiteName) => options.suites.includes(name);

    if (wants('queries') || wants('writes')) await startService();
    if (wants('queries')) {
      log('query patterns');
      results.queries = await measureQueries(plan, sql, client, service!.url, samples, log);
    }
    if (wants('peer')) {
      log('peer: the history page from the service and from PostGraphile');
      results.peer = await measurePeer(plan, options.serverUrl, database.name, database.url, client, cpu, samples, log);
    }
    if (wants('writes')) {
      log('write path');
      results.writes = await measureWrites(plan, database.url, sql, client, cpu, service!.url, stopService, samples, log);
    }
    if (wants('stalls')) {
      log('stalls: the stall check at scale');
      results.stalls = await measureStalls(sql, log);
    }
    results.elapsedMs = Math.round(performance.now() - started);
    return results;
  } finally {
    for (const close of cleanup.reverse()) await close().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  }
}
