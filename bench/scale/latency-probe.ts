/**
 * Diagnosis, not a benchmark phase (issue 13, single-request latency): where
 * one GraphQL request's wall time goes, one request at a time. Loads a small
 * seeded database, starts the service in this process and sends each case
 * from the benchmark's client process (client.ts `latencies`), once with
 * node:http and once with fetch. For each request it records, on the server
 * side, the time from the request's headers to its response finished and the
 * statements the service's pg clients sent meanwhile (pg.Client#query is
 * wrapped here, in the probe only); for the run, this process's CPU and its
 * event loop's busy time per request.
 *
 *   node --import tsx bench/scale/latency-probe.ts [requests=20000] [runs=100]
 *
 * DATABASE_URL names the PostgreSQL server (a database is made and dropped).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { createTokenVerifier } from '../../src/http/auth.js';
import { provisionViewer } from '../../src/services/users.js';
import { loadData } from '../data/load.js';
import { createBenchDatabase, DEFAULT_SERVER_URL } from '../lib/database.js';
import { forkRpcChild } from '../lib/rpc.js';
import { BENCH_JWT_SECRET, startBenchService } from '../lib/service.js';
import type { GraphQLCase, LatencyResult } from './client.js';
import { scalePlan } from './plan.js';
import { apiCursor, drawSamples } from './samples.js';

type Statement = { start: number; end: number };
type Served = { arrive: number; finish: number; statements: Statement[] };

const served: Served[] = [];
let current: Statement[] | undefined;

// Every statement of the service's pools, timed from its send to its answer.
const originalQuery = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
  const entry: Statement = { start: performance.now(), end: 0 };
  current?.push(entry);
  const done = () => (entry.end = performance.now());
  const callbackAt = args.findIndex((a) => typeof a === 'function');
  if (callbackAt >= 0) {
    const callback = args[callbackAt] as (...results: unknown[]) => void;
    args[callbackAt] = (...results: unknown[]) => {
      done();
      callback(...results);
    };
    return originalQuery.apply(this, args);
  }
  const result = originalQuery.apply(this, args) as Promise<unknown> | undefined;
  return result?.then(
    (value) => (done(), value),
    (error: unknown) => (done(), Promise.reject(error)),
  );
};

// Server side: from the request's headers parsed to its response finished.
const originalEmit = http.Server.prototype.emit as (...args: unknown[]) => boolean;
(http.Server.prototype as { emit: unknown }).emit = function (this: http.Server, event: string, ...args: unknown[]) {
  if (event === 'request') {
    const record: Served = { arrive: performance.now(), finish: 0, statements: [] };
    current = record.statements;
    (args[1] as http.ServerResponse).once('finish', () => {
      record.finish = performance.now();
      served.push(record);
    });
  }
  return originalEmit.call(this, event, ...args);
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const r2 = (x: number) => Math.round(x * 100) / 100;

const requests = Number(process.argv[2] ?? 20_000);
const runs = Number(process.argv[3] ?? 100);
const WARMUP = 10;
const PAGE = `edges { cursor node { id status progressPercentage currentStage topic createdAt } } pageInfo { hasNextPage endCursor }`;

const database = await createBenchDatabase(process.env.DATABASE_URL ?? DEFAULT_SERVER_URL, 'probe');
try {
  const plan = { ...scalePlan('quick'), requests, students: Math.max(100, requests / 10), organizations: 20 };
  await loadData({ url: database.url, requests, students: plan.students, organizations: plan.organizations });
  const direct = new pg.Client({ connectionString: database.url });
  await direct.connect();
  const s = await drawSamples(direct, plan);
  await direct.end();

  const started = await startBenchService(database.url, { DATABASE_POOL_SIZE: '10' });
  const url = `${started.running.url}/graphql`;

  // A viewer's first request: its token verified, its user provisioned (the row is already there, as in the benchmark).
  const verify = createTokenVerifier({ verify: { kind: 'hs256', secret: BENCH_JWT_SECRET }, maxLifetimeSeconds: 86_400, clockSkewSeconds: 30 });
  const { db } = started.running.database;
  const phases = { verify: [] as number[], provision: [] as number[], select1: [] as number[] };
  for (const student of s.students) {
    let t = performance.now();
    const { viewer } = await verify(student.token);
    phases.verify.push(performance.now() - t);
    t = performance.now();
    await provisionViewer(db, viewer);
    phases.provision.push(performance.now() - t);
    t = performance.now();
    await db.execute(sql`select 1`);
    phases.select1.push(performance.now() - t);
  }
  console.log(`in process, p50: a token's first verification ${r2(median(phases.verify))} ms; provisionViewer ${r2(median(phases.provision))} ms; select 1 ${r2(median(phases.select1))} ms`);

  const byStudent = (students: typeof s.students) => students.map((x): GraphQLCase => ({ query: '', variables: {}, token: x.token }));
  const cases: { name: string; query: string; cases: GraphQLCase[]; forHttp?: GraphQLCase[] }[] = [
    { name: '{ __typename }, no token', query: '{ __typename }', cases: [{ query: '', variables: {} }] },
    { name: '{ __typename }, admin', query: '{ __typename }', cases: [{ query: '', variables: {}, token: s.admin }] },
    {
      name: 'idempotency check (worker)',
      query: `query($c: String!) { contentRequestByCorrelationId(correlationId: $c) { id status progressPercentage } }`,
      cases: s.correlationIds.map((c) => ({ query: '', variables: { c }, token: s.worker })),
    },
    // Each student's first request (node:http's run uses other students, so that it is a first request too).
    { name: 'history page, first requests', query: `query { contentRequests(first: 20) { ${PAGE} } }`, cases: byStudent(s.students), forHttp: byStudent(s.activeStudents) },
    { name: 'history page, again', query: `query { contentRequests(first: 20) { ${PAGE} } }`, cases: byStudent(s.students) },
    {
      name: 'admin deep page',
      query: `query($after: String!) { contentRequests(first: 20, after: $after) { ${PAGE} } }`,
      cases: [{ query: '', variables: { after: apiCursor(s.adminDeepCursor) }, token: s.admin }],
    },
  ];
  const client = forkRpcChild(fileURLToPath(new URL('./client.ts', import.meta.url)));
  for (const c of cases) {
    for (const kind of ['fetch', 'http'] as const) {
      const chosen = kind === 'http' && c.forHttp ? c.forHttp : c.cases;
      served.length = 0;
      const cpu0 = process.cpuUsage();
      const elu0 = performance.eventLoopUtilization();
      const result = await client.call<LatencyResult>('latencies', {
        url,
        cases: chosen.map((x) => ({ ...x, query: c.query })),
        runs: Math.min(runs, chosen.length > 1 ? chosen.length - WARMUP : runs),
        warmupRuns: WARMUP,
        budgetMs: 10_000,
        client: kind,
      });
      const cpu = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0);
      if (result.errors) throw new Error(`${c.name}: ${result.firstError}`);
      const measured = served.slice(WARMUP);
      console.log(
        `${c.name} [${kind}]: client p50 ${r2(median(result.ms))} ms; server p50 ${r2(median(measured.map((r) => r.finish - r.arrive)))} ms; ` +
          `statements ${median(measured.map((r) => r.statements.length))}, on the wire p50 ${r2(median(measured.map((r) => r.statements.reduce((a, x) => a + x.end - x.start, 0))))} ms; ` +
          `per request (mean): CPU ${r2((cpu.user + cpu.system) / 1000 / served.length)} ms, event loop busy ${r2(elu.active / served.length)} ms`,
      );
    }
  }
  await client.close();
  await started.stop();
} finally {
  await database.drop();
}
