/**
 * The service's own CPU per GraphQL request under load, which a shared
 * machine moves far less than a rate: the service in this process on a
 * database of its own (20,000 requests), autocannon in a child process
 * (20 connections), `process.cpuUsage()` over the timed requests. Cases: the
 * peer phase's history page, a request by id and by correlation id, one
 * request's event replay (its first 50 events), and the
 * writes phase's submitContentRequest and reportStage (its report sequence,
 * reset before each round). Each line also gives the database round trips a
 * request (calls of pg's `Client.query` in this process, the service's only client).
 *
 *   node --expose-gc --import tsx bench/scale/cpu-per-request.ts [--rounds 3] [--seconds 4] [--only history]
 *
 * With `--cpu-prof` before `--import`, the profile covers the whole run.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createBenchDatabase, DEFAULT_SERVER_URL } from '../lib/database.js';
import { forkRpcChild } from '../lib/rpc.js';
import { startBenchService } from '../lib/service.js';
import { loadData } from '../data/load.js';
import type { CannonParams, CannonResult } from './client.js';
import { drawSamples } from './samples.js';
import { REPORT, reportSequence, SUBMIT } from './writes.js';
import { scalePlan } from './plan.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    only: { type: 'string', multiple: true },
  },
});
const rounds = Number(values.rounds);
const durationMs = Number(values.seconds) * 1000;

const serverUrl = process.env.DATABASE_URL ?? DEFAULT_SERVER_URL;
const plan = { ...scalePlan('tiny'), requests: 20_000, students: 2_000, poolSize: 20, connections: 20 };
const database = await createBenchDatabase(serverUrl, 'cpu');
const client = forkRpcChild(fileURLToPath(new URL('./client.ts', import.meta.url)));
try {
  await loadData({ url: database.url, requests: plan.requests, students: plan.students, organizations: plan.organizations, log: () => undefined });
  const sql = new pg.Client({ connectionString: database.url });
  await sql.connect();
  const samples = await drawSamples(sql, { ...plan, queries: { ...plan.queries, samples: 100 } });
  const reports = await reportSequence(sql, samples.reportTargets);
  const service = await startBenchService(database.url, { DATABASE_POOL_SIZE: String(plan.poolSize) });
  const url = `${service.running.url}/graphql`;
  const students = [samples.heaviest, ...samples.students];
  const cases: Record<string, Pick<CannonParams, 'query' | 'variants' | 'inOrder' | 'uniqueInputField'> & { before?: () => Promise<void> }> = {
    history: {
      query: `query { contentRequests(first: 20) { edges { node { id status createdAt topic progressPercentage currentStage } } pageInfo { hasNextPage endCursor } } }`,
      variants: students.map((s) => ({ variables: {}, token: s.token })),
    },
    // The floor: what the HTTP and GraphQL layers cost a student's request that reads nothing.
    typename: {
      query: `query { __typename }`,
      variants: students.map((s) => ({ variables: {}, token: s.token })),
    },
    byId: {
      query: `query($id: ID!) { contentRequest(id: $id) { id status progressPercentage currentStage } }`,
      variants: samples.requestIds.map((id) => ({ variables: { id }, token: samples.admin })),
    },
    byCorrelationId: {
      query: `query($c: String!) { contentRequestByCorrelationId(correlationId: $c) { id status progressPercentage } }`,
      variants: samples.correlationIds.map((c) => ({ variables: { c }, token: samples.worker })),
    },
    // queries.ts's "event replay of one request".
    eventReplay: {
      query: `query($id: ID!) { contentRequest(id: $id) { id status events(first: 50) { edges { node { sequence eventType newStatus stage progressPercentage createdAt } } pageInfo { hasNextPage } } } }`,
      variants: samples.requestIds.map((id) => ({ variables: { id }, token: samples.admin })),
    },
    submit: {
      query: SUBMIT,
      variants: samples.submitStudents.map((studentId) => ({
        variables: { input: { topic: 'Photosynthesis', studentQuery: 'How do plants make food?', studentId, correlationId: '' } },
        token: samples.admin,
      })),
      uniqueInputField: 'correlationId',
    },
    report: {
      query: REPORT,
      variants: reports.changes.map((c) => ({
        variables: { input: { requestId: c.requestId, stage: c.stage, status: 'IN_PROGRESS', progress: c.progress } },
        token: samples.worker,
      })),
      inOrder: true,
      before: reports.reset,
    },
  };
  // Every statement the service sends goes through one of pg's clients in this process.
  let roundTrips = 0;
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    roundTrips++;
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  try {
    for (const [name, params] of Object.entries(cases)) {
      if (values.only && !values.only.includes(name)) continue;
      const { before: prepare, ...load } = params;
      const perRequest: number[] = [];
      for (let round = 0; round < rounds + 1; round++) {
        await prepare?.();
        global.gc?.();
        const before = process.cpuUsage();
        const tripsBefore = roundTrips;
        const result = await client.call<CannonResult>('load', { ...load, url, connections: plan.connections, durationMs, warmupMs: 0 } satisfies CannonParams);
        const used = process.cpuUsage(before);
        const trips = (roundTrips - tripsBefore) / result.requests;
        if (result.failed > 0) throw new Error(`${name}: ${result.failed} failed; first: ${result.firstError}`);
        // The first round warms up (JIT, pool, token cache): not counted.
        if (round > 0) perRequest.push(Math.round((used.user + used.system) / result.requests));
        if (round > 0) {
          console.log(`${name} round ${round}: ${Math.round(result.requestsPerSecond)} requests/s, ${perRequest.at(-1)} µs CPU a request, ${trips.toFixed(2)} round trips a request`);
        }
      }
      const sorted = [...perRequest].sort((a, b) => a - b);
      console.log(`${name}: median ${sorted[Math.floor(sorted.length / 2)]} µs CPU a request (${sorted.join(', ')})`);
    }
  } finally {
    await service.stop();
    await sql.end();
  }
} finally {
  await client.close();
  await database.drop();
}
