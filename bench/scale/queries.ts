/**
 * The queries phase: the seed's query patterns, each as SQL on one
 * connection and as the GraphQL operation that serves it through the running
 * service, with the plan's node types from EXPLAIN (ANALYZE, FORMAT JSON).
 */
import pg from 'pg';
import type { RpcChild } from '../lib/rpc.js';
import { round, roundSummary, summarize, type Summary } from '../lib/stats.js';
import type { GraphQLCase, LatencyResult } from './client.js';
import type { ScalePlan } from './plan.js';
import { apiCursor, CURSOR_TIME, type Samples } from './samples.js';

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
  /** After every case's first request (below): the steady state. */
  graphqlMs: Summary | null;
  /** Each case's first request, before the warm-up: mostly a viewer's first in the process. */
  graphqlFirstMs: Summary | null;
  graphqlErrors: number;
  firstError?: string;
  plan: PlanSummary;
  /** The seed's expectation for the SQL, where it states one. */
  targetMs?: number;
  findings: string[];
};

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
// The in-flight statuses as a literal list, as the service sends them.
const inList = (values: string[]) => `(${values.map((v) => `'${v}'`).join(', ')})`;
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
      sql: `${LIST} where student_id = $1 and status in ${inList(s.inFlightStatuses)} ${ORDER}`,
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

export async function measureQueries(
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
    const { warmupRuns, warmupMs, sqlRuns, graphqlRuns } = plan.queries;
    const sqlParams = (i: number) => pattern.sqlParams[i % pattern.sqlParams.length]!;
    // The same warm-up as the GraphQL side's (client.ts latencies).
    const warmupEnd = performance.now() + warmupMs;
    let i = 0;
    for (; i < warmupRuns && performance.now() < warmupEnd; i++) await sql.query(pattern.sql, sqlParams(i));
    const deadline = performance.now() + plan.queries.budgetMs;
    for (let run = 0; run < sqlRuns; run++, i++) {
      const t0 = performance.now();
      await sql.query(pattern.sql, sqlParams(i));
      sqlMs.push(performance.now() - t0);
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
        warmupMs,
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
      graphqlFirstMs: graphql ? roundSummary(summarize(graphql.firstMs)) : null,
      graphqlErrors: graphql?.errors ?? 0,
      ...(graphql?.firstError ? { firstError: graphql.firstError } : {}),
      plan: planSummary,
      ...(pattern.targetMs !== undefined ? { targetMs: pattern.targetMs } : {}),
      findings,
    });
    const graphqlP50 = (ms: number[] | undefined) => (ms ? round(summarize(ms).p50) : '–');
    log(
      `  ${pattern.name}: sql p50 ${sqlSummary.p50} ms, graphql p50 ${graphqlP50(graphql?.ms)} ms ` +
        `(first request per case ${graphqlP50(graphql?.firstMs)} ms); ${planSummary.nodes.join(' › ')}`,
    );
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
