/**
 * The at-scale suites of issue 5, on one database loaded once per run
 * (loading a million requests is the slow part, so they share it):
 *
 * - data:    the loader's own rates (bench/data/load.ts);
 * - queries: the seed's query patterns, each as SQL on one connection and as
 *            the GraphQL operation that serves it, through the running
 *            service over HTTP (sequential, from the client process), with
 *            the plan's node types from EXPLAIN (ANALYZE, FORMAT JSON);
 * - peer:    the same history-page query from the service and from
 *            PostGraphile (bench/scale/peer-server.ts), same concurrency,
 *            same pool size;
 * - writes:  submitContentRequest and reportStage through the API under
 *            concurrent load (autocannon, from the client process), then the
 *            same change as raw SQL from as many connections as the
 *            service's pool, with the triggers on and off.
 *
 * The service runs in this process (createApp, as `npm start` runs it); the
 * load generator and PostGraphile run in child processes.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { TokenClaims } from '../../src/http/auth.js';
import { CpuMeter, type CpuShares } from '../lib/cpu.js';
import { createBenchDatabase, type BenchDatabase } from '../lib/database.js';
import { forkRpcChild, type RpcChild } from '../lib/rpc.js';
import { benchToken, startBenchService } from '../lib/service.js';
import { round, roundSummary, summarize, type Summary } from '../lib/stats.js';
import { loadData, type LoadResult } from '../data/load.js';
import type { Mode } from '../live/plan.js';
import type { CannonParams, CannonResult, GraphQLCase, LatencyResult } from './client.js';
import { scalePlan, type ScalePlan } from './plan.js';

export const SCALE_SUITES = ['data', 'queries', 'peer', 'writes'] as const;
export type ScaleSuiteName = (typeof SCALE_SUITES)[number];

const token = (claims: TokenClaims) => benchToken(claims, { expiresIn: '2h' });

// ---------------------------------------------------------------------------
// Result shapes

export type PlanSummary = {
  /** Pre-order: node type, and the index or relation it reads. */
  nodes: string[];
  executionMs: number;
  planningMs: number;
  /** Rows the scans produced or filtered away (all loops), against the rows returned. */
  rowsRead: number;
  rowsReturned: number;
  sharedBuffers: { hit: number; read: number };
};

export type QueryFigure = {
  name: string;
  /** What the SQL is, and whose view the GraphQL operation runs in. */
  description: string;
  sql: string;
  graphql: string | null;
  samples: number;
  sqlMs: Summary;
  graphqlMs: Summary | null;
  graphqlErrors: number;
  firstError?: string;
  plan: PlanSummary;
  /** The seed's expectation for the SQL, where it states one. */
  targetMs?: number;
  findings: string[];
};

export type Throughput = CannonResult & { cpu: CpuShares };

export type RawRate = {
  connections: number;
  transactions: number;
  perSecond: number;
  latency: Summary;
  errors: number;
  firstError?: string;
  cpu: CpuShares;
};

export type WriteFigure = {
  name: string;
  description: string;
  rawSql: string;
  api: Throughput;
  /** Rows the API run really created or changed, counted in the database afterwards. */
  apiEffect: string;
  rawTriggersOn: RawRate;
  rawTriggersOff: RawRate;
  /** API requests a second over the raw statements a second. */
  ratioToTriggersOn: number;
  ratioToTriggersOff: number;
};

export type PeerFigure = {
  peer: { name: string; version: string; graphqlVersion: string; node: string; note: string };
  connections: number;
  poolSize: number;
  query: { ours: string; peer: string };
  ours: Throughput;
  theirs: Throughput;
  /** Ours over theirs. */
  ratio: { requestsPerSecond: number; p50: number; p99: number };
};

export type ScaleResults = {
  plan: ScalePlan;
  database: string;
  data: LoadResult;
  queries?: { figures: QueryFigure[]; findings: string[] };
  peer?: PeerFigure;
  writes?: { figures: WriteFigure[]; connections: number; poolSize: number };
  elapsedMs: number;
};

export type ScaleOptions = {
  serverUrl: string;
  mode: Mode;
  suites: readonly ScaleSuiteName[];
  log?: (line: string) => void;
};

// ---------------------------------------------------------------------------

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

    if (wants('queries') || wants('peer') || wants('writes')) await startService();
    if (wants('queries')) {
      log('query patterns');
      results.queries = await measureQueries(plan, sql, client, service!.url, samples, log);
    }
    if (wants('peer')) {
      log('peer: the history page from the service and from PostGraphile');
      results.peer = await measurePeer(plan, options.serverUrl, database.name, database.url, client, cpu, service!.url, samples, log);
    }
    if (wants('writes')) {
      log('write path');
      results.writes = await measureWrites(plan, database.url, sql, client, cpu, service!.url, stopService, samples, log);
    }
    results.elapsedMs = Math.round(performance.now() - started);
    return results;
  } finally {
    for (const close of cleanup.reverse()) await close().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  }
}

// ---------------------------------------------------------------------------
// Samples: who and what the patterns ask about

type Student = { id: string; organizationId: string; count: number; token: string; deepCursor: { createdAt: string; id: string } };

type Samples = {
  admin: string;
  worker: string;
  students: Student[];
  heaviest: Student;
  activeStudents: Student[];
  orgAdmins: { organizationId: string; token: string }[];
  correlationIds: string[];
  requestIds: string[];
  adminDeepCursor: { createdAt: string; id: string };
  reportTargets: { requestId: string; stage: string }[];
  submitStudents: string[];
};

const CURSOR_TIME = `to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

async function drawSamples(sql: pg.Client, plan: ScalePlan): Promise<Samples> {
  const count = plan.queries.samples;
  const studentRows = async (where: string) => {
    const { rows } = await sql.query<{ student_id: string; organization_id: string; n: string }>(
      `select student_id, organization_id, count(*) as n from content_requests ${where}
        group by student_id, organization_id order by random() limit $1`,
      [count],
    );
    return rows;
  };
  const makeStudent = async (row: { student_id: string; organization_id: string; n: string }): Promise<Student> => {
    const n = Number(row.n);
    // A deep page: the last one of the student's history (or the middle when the history is short).
    const offset = n > 40 ? n - 20 : Math.floor(n / 2);
    const { rows } = await sql.query<{ t: string; id: string }>(
      `select ${CURSOR_TIME} as t, id from content_requests where student_id = $1
        order by created_at desc, id desc offset $2 limit 1`,
      [row.student_id, Math.max(0, offset - 1)],
    );
    return {
      id: row.student_id,
      organizationId: row.organization_id,
      count: n,
      token: await token({ sub: row.student_id, role: 'student', organization_id: row.organization_id }),
      deepCursor: { createdAt: rows[0]!.t, id: rows[0]!.id },
    };
  };
  // One connection: one query at a time.
  const sequentially = async <T, R>(items: T[], work: (item: T) => Promise<R>) => {
    const out: R[] = [];
    for (const item of items) out.push(await work(item));
    return out;
  };
  const students = await sequentially(await studentRows(''), makeStudent);
  const { rows: heavy } = await sql.query<{ student_id: string; organization_id: string; n: string }>(
    `select student_id, organization_id, count(*) as n from content_requests group by 1, 2 order by 3 desc limit 1`,
  );
  const heaviest = await makeStudent(heavy[0]!);
  const activeStudents = await sequentially(
    await studentRows(`where status not in ('completed', 'failed', 'cancelled')`),
    makeStudent,
  );
  const { rows: orgs } = await sql.query<{ organization_id: string }>(
    `select organization_id from organizations order by random() limit $1`,
    [count],
  );
  const orgAdmins = await Promise.all(
    orgs.map(async (o) => ({
      organizationId: o.organization_id,
      token: await token({ sub: `bench-org-admin-${o.organization_id}`, role: 'org_admin', organization_id: o.organization_id }),
    })),
  );
  const pick = () => 1 + Math.floor(Math.random() * plan.requests);
  const correlationIds = Array.from({ length: count }, () => `bench-${pick()}`);
  const { rows: ids } = await sql.query<{ id: string }>(
    `select overlay(overlay(md5('bench-request-' || i) placing '4' from 13) placing '8' from 17)::uuid::text as id from unnest($1::int[]) i`,
    [Array.from({ length: count }, pick)],
  );
  const { rows: deep } = await sql.query<{ t: string; id: string }>(
    `select ${CURSOR_TIME} as t, id from content_requests order by created_at desc, id desc offset $1 limit 1`,
    [Math.floor(plan.requests * 0.9)],
  );
  const { rows: targets } = await sql.query<{ request_id: string; stage_name: string }>(
    `select s.request_id, s.stage_name from request_stages s join content_requests r on r.id = s.request_id
      where s.status = 'in_progress' and r.status not in ('completed', 'failed', 'cancelled')`,
  );
  return {
    admin: await token({ sub: 'bench-admin', role: 'admin' }),
    worker: await token({ sub: 'bench-worker', role: 'worker' }),
    students,
    heaviest,
    activeStudents,
    orgAdmins,
    correlationIds,
    requestIds: ids.map((r) => r.id),
    adminDeepCursor: { createdAt: deep[0]!.t, id: deep[0]!.id },
    reportTargets: targets.map((t) => ({ requestId: t.request_id, stage: t.stage_name })),
    submitStudents: students.map((s) => s.id),
  };
}

const apiCursor = (c: { createdAt: string; id: string }) => Buffer.from(JSON.stringify([c.createdAt, c.id])).toString('base64url');

// ---------------------------------------------------------------------------
// 2. Query patterns

type Pattern = {
  name: string;
  description: string;
  sql: string;
  /** SQL parameters of each sample; the first is the one EXPLAINed. */
  sqlParams: unknown[][];
  graphql: string | null;
  cases: GraphQLCase[];
  targetMs?: number;
};

const LIST = `select *, ${CURSOR_TIME} as cursor_time from content_requests`;
// As the service writes it (src/services/requests.ts NEWEST_FIRST): NULLS LAST, like drizzle-kit's DESC indexes.
const ORDER = `order by created_at desc nulls last, id desc nulls last limit 21`;
const ACTIVE = `('pending', 'validating', 'retrieving', 'generating_script', 'generating_video', 'processing_video')`;
const PAGE_FIELDS = `edges { cursor node { id status progressPercentage currentStage topic createdAt } } pageInfo { hasNextPage endCursor }`;

function patterns(s: Samples): Pattern[] {
  const student = [s.heaviest, ...s.students];
  const active = s.activeStudents.length ? s.activeStudents : student;
  return [
    {
      name: "worker's idempotency check",
      description: 'by correlation_id (worker)',
      sql: `select * from content_requests where correlation_id = $1`,
      sqlParams: s.correlationIds.map((c) => [c]),
      graphql: `query($c: String!) { contentRequestByCorrelationId(correlationId: $c) { id status progressPercentage } }`,
      cases: s.correlationIds.map((c) => ({ query: '', variables: { c }, token: s.worker })),
      targetMs: 1,
    },
    {
      name: "a student's active requests",
      description: 'status in the six active ones, newest first (the student)',
      sql: `${LIST} where student_id = $1 and status in ${ACTIVE} ${ORDER}`,
      sqlParams: active.map((x) => [x.id]),
      graphql: `query { contentRequests(first: 20, filter: { status: [PENDING, VALIDATING, RETRIEVING, GENERATING_SCRIPT, GENERATING_VIDEO, PROCESSING_VIDEO] }) { ${PAGE_FIELDS} } }`,
      cases: active.map((x) => ({ query: '', variables: {}, token: x.token })),
      targetMs: 5,
    },
    {
      name: "a student's history, first page",
      description: '20 newest (the student; EXPLAIN on the heaviest)',
      sql: `${LIST} where student_id = $1 ${ORDER}`,
      sqlParams: student.map((x) => [x.id]),
      graphql: `query { contentRequests(first: 20) { ${PAGE_FIELDS} } }`,
      cases: student.map((x) => ({ query: '', variables: {}, token: x.token })),
    },
    {
      name: "a student's history, deep page",
      description: 'keyset: the page after a cursor near the end of the history',
      sql: `${LIST} where student_id = $1 and (created_at, id) < ($2::timestamptz, $3::uuid) ${ORDER}`,
      sqlParams: student.map((x) => [x.id, x.deepCursor.createdAt, x.deepCursor.id]),
      graphql: `query($after: String!) { contentRequests(first: 20, after: $after) { ${PAGE_FIELDS} } }`,
      cases: student.map((x) => ({ query: '', variables: { after: apiCursor(x.deepCursor) }, token: x.token })),
    },
    {
      name: "admins' failed list",
      description: 'status = failed, newest first by created_at (admin)',
      sql: `${LIST} where status in ('failed') ${ORDER}`,
      sqlParams: [[]],
      graphql: `query { contentRequests(first: 20, filter: { status: [FAILED] }) { ${PAGE_FIELDS} } }`,
      cases: [{ query: '', variables: {}, token: s.admin }],
      targetMs: 10,
    },
    {
      name: "admins' failed list by failed_at",
      description: "the seed's form: newest failure first (no API operation orders by failed_at)",
      sql: `select * from content_requests where status = 'failed' order by failed_at desc nulls last limit 20`,
      sqlParams: [[]],
      graphql: null,
      cases: [],
      targetMs: 10,
    },
    {
      name: "an organization's requests by status",
      description: 'completed, newest first (org admin)',
      sql: `${LIST} where organization_id = $1 and status in ('completed') ${ORDER}`,
      sqlParams: s.orgAdmins.map((o) => [o.organizationId]),
      graphql: `query { contentRequests(first: 20, filter: { status: [COMPLETED] }) { ${PAGE_FIELDS} } }`,
      cases: s.orgAdmins.map((o) => ({ query: '', variables: {}, token: o.token })),
    },
    {
      name: 'event replay of one request',
      description: 'its first 50 events in sequence order (admin)',
      sql: `select * from (select request_events.*, row_number() over (partition by request_id order by sequence) as rank
              from request_events where request_id in ($1) and sequence > 0) ranked
             where rank <= 51 order by request_id, sequence`,
      sqlParams: s.requestIds.map((id) => [id]),
      graphql: `query($id: ID!) { contentRequest(id: $id) { id status events(first: 50) { edges { node { sequence eventType newStatus stage progressPercentage createdAt } } pageInfo { hasNextPage } } } }`,
      cases: s.requestIds.map((id) => ({ query: '', variables: { id }, token: s.admin })),
    },
    {
      name: "admins' deep page of all requests",
      description: 'keyset: the page after a cursor 90% down the whole list (admin)',
      sql: `${LIST} where (created_at, id) < ($1::timestamptz, $2::uuid) ${ORDER}`,
      sqlParams: [[s.adminDeepCursor.createdAt, s.adminDeepCursor.id]],
      graphql: `query($after: String!) { contentRequests(first: 20, after: $after) { ${PAGE_FIELDS} } }`,
      cases: [{ query: '', variables: { after: apiCursor(s.adminDeepCursor) }, token: s.admin }],
    },
  ];
}

async function measureQueries(
  plan: ScalePlan,
  sql: pg.Client,
  client: RpcChild,
  url: string,
  samples: Samples,
  log: (line: string) => void,
): Promise<{ figures: QueryFigure[]; findings: string[] }> {
  const figures: QueryFigure[] = [];
  for (const pattern of patterns(samples)) {
    const sqlMs: number[] = [];
    const { warmupRuns, sqlRuns, graphqlRuns } = plan.queries;
    const deadline = performance.now() + plan.queries.budgetMs;
    for (let i = 0; i < warmupRuns + sqlRuns; i++) {
      const params = pattern.sqlParams[i % pattern.sqlParams.length]!;
      const t0 = performance.now();
      await sql.query(pattern.sql, params);
      if (i >= warmupRuns) sqlMs.push(performance.now() - t0);
      if (sqlMs.length >= 20 && performance.now() > deadline) break;
    }
    const explained = await sql.query<{ 'QUERY PLAN': unknown }>(
      `explain (analyze, buffers, format json) ${pattern.sql}`,
      pattern.sqlParams[0],
    );
    const planSummary = summarizePlan(explained.rows[0]!['QUERY PLAN']);
    let graphql: LatencyResult | undefined;
    if (pattern.graphql) {
      graphql = await client.call<LatencyResult>('latencies', {
        url,
        cases: pattern.cases.map((c) => ({ ...c, query: pattern.graphql })),
        runs: graphqlRuns,
        warmupRuns,
        budgetMs: plan.queries.budgetMs,
      });
    }
    const sqlSummary = roundSummary(summarize(sqlMs));
    const findings = planFindings(planSummary);
    if (pattern.targetMs !== undefined && sqlSummary.p50 > pattern.targetMs) {
      findings.push(`the SQL's median ${sqlSummary.p50} ms is over the seed's ${pattern.targetMs} ms`);
    }
    if (graphql?.errors) findings.push(`${graphql.errors} GraphQL responses had errors: ${graphql.firstError}`);
    figures.push({
      name: pattern.name,
      description: pattern.description,
      sql: pattern.sql.replace(/\s+/g, ' '),
      graphql: pattern.graphql,
      samples: pattern.sqlParams.length,
      sqlMs: sqlSummary,
      graphqlMs: graphql ? roundSummary(summarize(graphql.ms)) : null,
      graphqlErrors: graphql?.errors ?? 0,
      ...(graphql?.firstError ? { firstError: graphql.firstError } : {}),
      plan: planSummary,
      ...(pattern.targetMs !== undefined ? { targetMs: pattern.targetMs } : {}),
      findings,
    });
    log(`  ${pattern.name}: sql p50 ${sqlSummary.p50} ms, graphql p50 ${graphql ? round(summarize(graphql.ms).p50) : '–'} ms; ${planSummary.nodes.join(' › ')}`);
  }
  return {
    figures,
    findings: figures.flatMap((f) => f.findings.map((finding) => `${f.name}: ${finding}`)),
  };
}

type PlanNode = Record<string, any> & { 'Node Type': string; Plans?: PlanNode[] };

export function summarizePlan(explained: unknown): PlanSummary {
  const top = (explained as { Plan: PlanNode; 'Execution Time': number; 'Planning Time': number }[])[0]!;
  const nodes: string[] = [];
  let rowsRead = 0;
  const walk = (node: PlanNode) => {
    const target = node['Index Name'] ?? node['Relation Name'];
    let label = target ? `${node['Node Type']} (${target})` : node['Node Type'];
    if (node['Sort Key']) {
      const presorted = node['Presorted Key'] ? `; presorted ${(node['Presorted Key'] as string[]).join(', ')}` : '';
      label += ` [${(node['Sort Key'] as string[]).join(', ')}${presorted}; ${node.Plans?.[0]?.['Actual Rows'] ?? '?'} rows in]`;
    }
    nodes.push(label);
    if (/Scan$/.test(node['Node Type']) && node['Node Type'] !== 'Bitmap Index Scan') {
      const loops = node['Actual Loops'] ?? 1;
      rowsRead += ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * loops;
    }
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(top.Plan);
  return {
    nodes,
    executionMs: round(top['Execution Time']),
    planningMs: round(top['Planning Time']),
    rowsRead,
    rowsReturned: top.Plan['Actual Rows'] ?? 0,
    sharedBuffers: { hit: top.Plan['Shared Hit Blocks'] ?? 0, read: top.Plan['Shared Read Blocks'] ?? 0 },
  };
}

/** A sort, a sequential scan, or far more rows read than returned: work an index could save. */
export function planFindings(plan: PlanSummary): string[] {
  const findings: string[] = [];
  for (const node of plan.nodes) {
    if (node.startsWith('Seq Scan')) findings.push(`seq-scans: ${node}`);
    if (node.startsWith('Sort') || node.startsWith('Incremental Sort')) findings.push(`sorts: ${node}`);
  }
  if (plan.rowsRead > Math.max(1_000, 20 * Math.max(1, plan.rowsReturned))) {
    findings.push(`reads ${plan.rowsRead.toLocaleString('en-US')} rows to return ${plan.rowsReturned}`);
  }
  return findings;
}

// ---------------------------------------------------------------------------
// 5. The peer

const OUR_HISTORY = `query { contentRequests(first: 20) { edges { node { id status createdAt topic progressPercentage currentStage } } pageInfo { hasNextPage endCursor } } }`;
const PEER_HISTORY = `query($s: String!) { allContentRequests(condition: { studentId: $s }, orderBy: [CREATED_AT_DESC, ID_DESC], first: 20) { edges { node { id status createdAt topic progressPercentage currentStage } } pageInfo { hasNextPage endCursor } } }`;

async function measurePeer(
  plan: ScalePlan,
  serverUrl: string,
  databaseName: string,
  databaseUrl: string,
  client: RpcChild,
  cpu: CpuMeter,
  ourUrl: string,
  samples: Samples,
  log: (line: string) => void,
): Promise<PeerFigure> {
  const students = [samples.heaviest, ...samples.students];
  /** With `serverPid`, the server is that process (PostGraphile's), not this one, in the cpu figures. */
  const load = async (params: Omit<CannonParams, 'connections' | 'durationMs' | 'warmupMs'>, serverPid?: number): Promise<Throughput> => {
    const run = () =>
      client.call<CannonResult>('load', {
        ...params,
        connections: plan.connections,
        durationMs: plan.peer.durationMs,
        warmupMs: plan.peer.warmupMs,
      } satisfies CannonParams);
    if (serverPid === undefined) {
      const stop = await cpu.start();
      const result = await run();
      return { ...result, cpu: await stop() };
    }
    const serverMeter = await CpuMeter.connect(serverUrl, databaseName, serverPid);
    try {
      const stop = await cpu.start();
      const stopServer = await serverMeter.start();
      const result = await run();
      const [shares, server] = [await stop(), await stopServer()];
      const other = Math.max(0, Math.round((shares.other + shares.server - server.driver) * 100) / 100);
      return { ...result, cpu: { ...shares, server: server.driver, other } };
    } finally {
      await serverMeter.close();
    }
  };
  const ours = await load({ url: ourUrl, query: OUR_HISTORY, variants: students.map((s) => ({ variables: {}, token: s.token })) });
  log(`  service: ${Math.round(ours.requestsPerSecond)} requests/s, p99 ${ours.latency.p99} ms`);

  const peerProcess = forkRpcChild(fileURLToPath(new URL('./peer-server.ts', import.meta.url)));
  try {
    const peer = await peerProcess.call<{ url: string; version: string; graphqlVersion: string; node: string }>('start', {
      databaseUrl,
      poolSize: plan.poolSize,
    });
    const theirs = await load({ url: peer.url, query: PEER_HISTORY, variants: students.map((s) => ({ variables: { s: s.id } })) }, peerProcess.pid);
    log(`  PostGraphile ${peer.version}: ${Math.round(theirs.requestsPerSecond)} requests/s, p99 ${theirs.latency.p99} ms`);
    return {
      peer: {
        name: 'PostGraphile',
        version: peer.version,
        graphqlVersion: peer.graphqlVersion,
        node: peer.node,
        note:
          'v5 (5.1.5) was tried first: on Node 20.20 every request fails with "Promise.withResolvers is not a function" ' +
          '(it declares Node >= 22), so v4 runs. It answers without authentication (no JWT, no row-level security); ' +
          'the service verifies a student token and scopes the query to that student.',
      },
      connections: plan.connections,
      poolSize: plan.poolSize,
      query: { ours: OUR_HISTORY, peer: PEER_HISTORY },
      ours,
      theirs,
      ratio: {
        requestsPerSecond: round(ours.requestsPerSecond / theirs.requestsPerSecond),
        p50: round(ours.latency.p50 / theirs.latency.p50),
        p99: round(ours.latency.p99 / theirs.latency.p99),
      },
    };
  } finally {
    await peerProcess.close();
  }
}

// ---------------------------------------------------------------------------
// 3. The write path

const SUBMIT = `mutation($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { created request { id status } } }`;
const REPORT = `mutation($input: ReportStageInput!) { reportStage(input: $input) { id status progressPercentage } }`;
const RAW_SUBMIT = `insert into content_requests (correlation_id, student_id, organization_id, topic, student_query, grade_level, metadata)
  values ($1, $2::varchar, (select organization_id from users where user_id = $2::varchar), $3, $4, null, '{}') on conflict (correlation_id) do nothing returning *`;
const RAW_REPORT = `insert into request_stages (request_id, stage_name, status, progress_percentage, error_message, metadata)
  values ($1, $2, 'in_progress', $3, null, '{}')
  on conflict (request_id, stage_name) do update set status = excluded.status, progress_percentage = excluded.progress_percentage,
    error_message = excluded.error_message, metadata = request_stages.metadata || excluded.metadata`;

async function rawRate(
  databaseUrl: string,
  cpu: CpuMeter,
  connections: number,
  durationMs: number,
  warmupMs: number,
  triggers: boolean,
  statement: (n: number) => { text: string; values: unknown[] },
): Promise<RawRate> {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const c = new pg.Client({ connectionString: databaseUrl, application_name: 'tracker-bench:raw-write' });
      await c.connect();
      if (!triggers) await c.query('set session_replication_role = replica');
      return c;
    }),
  );
  try {
    let counter = 0;
    let errors = 0;
    let firstError: string | undefined;
    const run = async (ms: number, latencies: number[] | null) => {
      const deadline = performance.now() + ms;
      let done = 0;
      await Promise.all(
        clients.map(async (c) => {
          while (performance.now() < deadline) {
            const { text, values } = statement(counter++);
            const t0 = performance.now();
            try {
              await c.query(text, values);
              done++;
              latencies?.push(performance.now() - t0);
            } catch (error) {
              errors++;
              firstError ??= String(error);
            }
          }
        }),
      );
      return done;
    };
    await run(warmupMs, null);
    errors = 0;
    const latencies: number[] = [];
    const stop = await cpu.start();
    const t0 = performance.now();
    const done = await run(durationMs, latencies);
    const elapsed = performance.now() - t0;
    return {
      connections,
      transactions: done,
      perSecond: round(done / (elapsed / 1000), 1),
      latency: roundSummary(summarize(latencies)),
      errors,
      ...(firstError ? { firstError } : {}),
      cpu: await stop(),
    };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

async function measureWrites(
  plan: ScalePlan,
  databaseUrl: string,
  sql: pg.Client,
  client: RpcChild,
  cpu: CpuMeter,
  url: string,
  stopService: () => Promise<void>,
  samples: Samples,
  log: (line: string) => void,
): Promise<{ figures: WriteFigure[]; connections: number; poolSize: number }> {
  const load = async (params: Omit<CannonParams, 'connections' | 'durationMs' | 'warmupMs'>): Promise<Throughput> => {
    const stop = await cpu.start();
    const result = await client.call<CannonResult>('load', {
      ...params,
      connections: plan.connections,
      durationMs: plan.writes.apiMs,
      warmupMs: plan.writes.warmupMs,
    } satisfies CannonParams);
    return { ...result, cpu: await stop() };
  };
  const count = async (text: string) => Number((await sql.query<{ n: string }>(text)).rows[0]!.n);

  // Through the API, with the service running.
  const requestsBefore = await count(`select count(*) as n from content_requests`);
  const eventsBefore = await count(`select count(*) as n from request_events`);
  const submitApi = await load({
    url,
    query: SUBMIT,
    variants: samples.submitStudents.map((studentId) => ({
      variables: { input: { topic: 'Photosynthesis', studentQuery: 'How do plants make food?', studentId, correlationId: '' } },
      token: samples.admin,
    })),
    uniqueInputField: 'correlationId',
  });
  const requestsAfter = await count(`select count(*) as n from content_requests`);
  log(`  submitContentRequest: ${Math.round(submitApi.requestsPerSecond)}/s through the API`);
  const targets = samples.reportTargets.length ? samples.reportTargets : [];
  const eventsMid = await count(`select count(*) as n from request_events`);
  const reportApi = targets.length
    ? await load({
        url,
        query: REPORT,
        variants: Array.from({ length: Math.min(targets.length, 5_000) }, (_, i) => {
          const t = targets[i]!;
          // Each variant a different progress: most reports move the request's bar, so most write an event.
          return { variables: { input: { requestId: t.requestId, stage: t.stage, status: 'IN_PROGRESS', progress: 1 + (i % 98) } }, token: samples.worker };
        }),
      })
    : undefined;
  const eventsAfter = await count(`select count(*) as n from request_events`);
  if (reportApi) log(`  reportStage: ${Math.round(reportApi.requestsPerSecond)}/s through the API`);

  // The same changes as raw SQL, with the service stopped (its listener would
  // otherwise read every event the triggers write).
  await stopService();
  const submitStudents = samples.submitStudents;
  const submitStatement = (n: number) => ({
    text: RAW_SUBMIT,
    values: [`raw-${process.pid}-${Date.now()}-${n}`, submitStudents[n % submitStudents.length], 'Photosynthesis', 'How do plants make food?'],
  });
  const reportStatement = (n: number) => {
    const t = targets[Math.floor(Math.random() * targets.length)]!;
    return { text: RAW_REPORT, values: [t.requestId, t.stage, 1 + (n % 98)] };
  };
  const raw = (triggers: boolean, statement: (n: number) => { text: string; values: unknown[] }) =>
    rawRate(databaseUrl, cpu, plan.poolSize, plan.writes.rawMs, plan.writes.warmupMs, triggers, statement);

  const figures: WriteFigure[] = [];
  const submitOn = await raw(true, submitStatement);
  const submitOff = await raw(false, submitStatement);
  log(`  raw insert: ${Math.round(submitOn.perSecond)}/s triggers on, ${Math.round(submitOff.perSecond)}/s off`);
  figures.push({
    name: 'submitContentRequest',
    description: 'a new request (admin, for a random student; a new correlation id each)',
    rawSql: RAW_SUBMIT.replace(/\s+/g, ' '),
    api: submitApi,
    apiEffect: `${(requestsAfter - requestsBefore).toLocaleString('en-US')} requests created (warm-up included), ${(eventsMid - eventsBefore).toLocaleString('en-US')} events`,
    rawTriggersOn: submitOn,
    rawTriggersOff: submitOff,
    ratioToTriggersOn: round(submitApi.requestsPerSecond / submitOn.perSecond),
    ratioToTriggersOff: round(submitApi.requestsPerSecond / submitOff.perSecond),
  });
  if (reportApi) {
    const reportOn = await raw(true, reportStatement);
    const reportOff = await raw(false, reportStatement);
    log(`  raw stage upsert: ${Math.round(reportOn.perSecond)}/s triggers on, ${Math.round(reportOff.perSecond)}/s off`);
    figures.push({
      name: 'reportStage',
      description: `progress of a running stage (worker; ${targets.length.toLocaleString('en-US')} active requests)`,
      rawSql: RAW_REPORT.replace(/\s+/g, ' '),
      api: reportApi,
      apiEffect: `${(eventsAfter - eventsMid).toLocaleString('en-US')} progress events written (warm-up included)`,
      rawTriggersOn: reportOn,
      rawTriggersOff: reportOff,
      ratioToTriggersOn: round(reportApi.requestsPerSecond / reportOn.perSecond),
      ratioToTriggersOff: round(reportApi.requestsPerSecond / reportOff.perSecond),
    });
  }
  return { figures, connections: plan.connections, poolSize: plan.poolSize };
}
