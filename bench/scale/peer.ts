/**
 * The peer phase: the same history-page query from the service and from
 * PostGraphile, same concurrency, same pool size. Two peers, each in its own
 * process: PostGraphile 5, the current major (bench/scale/peer-server-v5.ts),
 * the row the service is compared against; and PostGraphile 4
 * (bench/scale/peer-server.ts), kept as a second row so older runs compare.
 * Before a peer is timed, its answer for the heaviest student must be the
 * service's: the same requests, in the same order. The service and a peer
 * are timed in turns (plan.peer.rounds), the ratio the median of the turns'.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { CpuMeter } from '../lib/cpu.js';
import { forkRpcChild, type RpcChild } from '../lib/rpc.js';
import { round } from '../lib/stats.js';
import type { CannonParams, CannonResult, Throughput } from './client.js';
import type { ScalePlan } from './plan.js';
import { summarizePlan } from './queries.js';
import type { Samples } from './samples.js';

export type PeerKey = 'v5' | 'v4';

export type PeerRow = {
  key: PeerKey;
  peer: { name: string; version: string; graphqlVersion: string; node: string; note: string };
  query: string;
  /** Requests on the heaviest student's page, found equal to the service's before timing. */
  checkedRequests: number;
  /** The peer's own SQL for that page (as pg_stat_activity showed it) under EXPLAIN ANALYZE; null if not found. */
  plan: PeerPlan | null;
  /** Both sides in the turn whose ratio is the median (requests/s, latency, cpu). */
  ours: Throughput;
  theirs: Throughput;
  /** Each turn's requests/s, the service's first, then the peer's. */
  rounds: { ours: number; theirs: number; ratio: number }[];
  /** Ours over theirs: requests/s the median of the turns' ratios; latency that turn's. */
  ratio: { requestsPerSecond: number; p50: number; p99: number };
};

export type PeerFigure = {
  connections: number;
  poolSize: number;
  query: string;
  /** PostGraphile 5 first, then 4; each row has the service's side of its own turns. */
  peers: PeerRow[];
};

const OUR_HISTORY = `query { contentRequests(first: 20) { edges { node { id status createdAt topic progressPercentage currentStage } } pageInfo { hasNextPage endCursor } } }`;
/**
 * The same page in PostGraphile's names: v4's and v5's Amber preset agree but
 * for the row's own id, which v5 calls `rowId` (its `id` is the global node
 * id); the alias gives both answers the service's shape.
 */
const peerHistory = (idField: 'id' | 'rowId') =>
  `query($s: String!) { allContentRequests(condition: { studentId: $s }, orderBy: [CREATED_AT_DESC, PRIMARY_KEY_DESC], first: 20) ` +
  `{ edges { node { id: ${idField} status createdAt topic progressPercentage currentStage } } pageInfo { hasNextPage endCursor } } }`;

const NO_AUTH_NOTE =
  'It answers without authentication (no JWT, no row-level security) and is given the student as a variable; ' +
  'the service verifies a student token and scopes the query to that student.';
const PEERS: { key: PeerKey; module: string; query: string; note: string }[] = [
  {
    key: 'v5',
    module: './peer-server-v5.ts',
    query: peerHistory('rowId'),
    note: `Amber preset; Promise.withResolvers polyfilled in its own process (it declares Node >= 22). ${NO_AUTH_NOTE}`,
  },
  { key: 'v4', module: './peer-server.ts', query: peerHistory('id'), note: `graphql 15 in its own process. ${NO_AUTH_NOTE}` },
];

type Page = { ids: string[]; hasNextPage: boolean };

export type PeerPlan = {
  sql: string;
  /** Node types in pre-order, as the query patterns print them. */
  nodes: string[];
  sorts: boolean;
  /** The plan again once PEER_INDEX exists, when the first one sorted. */
  withPeerIndex?: { nodes: string[]; sorts: boolean };
};

/**
 * PostGraphile orders CREATED_AT_DESC as plain DESC (NULLS FIRST), which the
 * schema's DESC NULLS LAST indexes cannot serve, so each of its pages would
 * sort. When its plan sorts, this index (its order, for its condition) is
 * made in the benchmark's database only, for the peer phase only: the peers
 * are timed with an index they can use, as the service is.
 */
const PEER_INDEX = 'bench_peer_student_created_desc';
const PEER_INDEX_SQL = `create index if not exists ${PEER_INDEX} on content_requests (student_id, created_at desc, id desc)`;
const APPLICATION_NAME: Record<PeerKey, string> = { v5: 'tracker-bench:postgraphile5', v4: 'tracker-bench:postgraphile' };

/** The last statement the peer's connections ran on content_requests (the page just fetched), explained with the student as $1. */
async function explainPeerPage(sql: pg.Client, key: PeerKey, studentId: string): Promise<{ sql: string; nodes: string[]; sorts: boolean } | null> {
  const { rows } = await sql.query<{ query: string }>(
    `select query from pg_stat_activity where datname = current_database() and application_name = $1 and query ilike '%content_requests%' order by query_start desc limit 1`,
    [APPLICATION_NAME[key]],
  );
  const text = rows[0]?.query;
  // Only a statement whose one parameter is the student can be replayed here.
  if (!text || new Set(text.match(/\$\d+/g)).size !== 1 || !text.includes('$1')) return null;
  // pg_stat_activity cuts a statement at track_activity_query_size (v4's is longer): then it does not parse.
  const explained = await sql
    .query<{ 'QUERY PLAN': unknown }>(`explain (analyze, buffers, format json) ${text}`, [studentId])
    .catch(() => null);
  if (!explained) return null;
  const { nodes } = summarizePlan(explained.rows[0]!['QUERY PLAN']);
  return { sql: text.replace(/\s+/g, ' ').trim(), nodes, sorts: nodes.some((node) => /^(Incremental )?Sort/.test(node)) };
}

/** The peer's plan for the page; when it sorts, PEER_INDEX is made and the plan read again. */
async function checkPeerPlan(sql: pg.Client, key: PeerKey, studentId: string, log: (line: string) => void): Promise<PeerPlan | null> {
  const first = await explainPeerPage(sql, key, studentId);
  if (!first) {
    log(`  ${key}: its SQL for the page was not found whole in pg_stat_activity; its plan is not checked`);
    return null;
  }
  log(`  ${key} plan: ${first.nodes.join(' › ')}${first.sorts ? ' — sorts' : ''}`);
  if (!first.sorts) return first;
  await sql.query(PEER_INDEX_SQL);
  const again = await explainPeerPage(sql, key, studentId);
  const withPeerIndex = again ? { nodes: again.nodes, sorts: again.sorts } : { nodes: [], sorts: true };
  log(`  ${key} plan with ${PEER_INDEX}: ${withPeerIndex.nodes.join(' › ')}`);
  return { ...first, withPeerIndex };
}

/** The history page's ids, fetched once outside the timed load. */
async function fetchPage(url: string, query: string, variables: Record<string, unknown>, token?: string): Promise<Page> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, any>; errors?: { message: string }[] };
  if (!response.ok || body.errors || !body.data) {
    throw new Error(`history page from ${url}: HTTP ${response.status}, ${body.errors?.[0]?.message ?? 'no data'}`);
  }
  const connection = Object.values(body.data)[0] as { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean } };
  return { ids: connection.edges.map((edge) => edge.node.id), hasNextPage: connection.pageInfo.hasNextPage };
}

export async function measurePeer(
  plan: ScalePlan,
  serverUrl: string,
  databaseName: string,
  databaseUrl: string,
  client: RpcChild,
  cpu: CpuMeter,
  samples: Samples,
  log: (line: string) => void,
): Promise<PeerFigure> {
  const students = [samples.heaviest, ...samples.students];
  /** The server is process `serverPid` (the service's or a peer's), counted apart from the rest in the cpu figures. */
  const load = async (params: Omit<CannonParams, 'connections' | 'durationMs' | 'warmupMs'>, serverPid: number | undefined): Promise<Throughput> => {
    const serverMeter = await CpuMeter.connect(serverUrl, databaseName, serverPid);
    try {
      const stop = await cpu.start();
      const stopServer = await serverMeter.start();
      const result = await client.call<CannonResult>('load', {
        ...params,
        connections: plan.connections,
        durationMs: plan.peer.durationMs,
        warmupMs: plan.peer.warmupMs,
      } satisfies CannonParams);
      const [shares, server] = [await stop(), await stopServer()];
      const other = Math.max(0, Math.round((shares.other + shares.server - server.driver) * 100) / 100);
      return { ...result, cpu: { ...shares, server: server.driver, other } };
    } finally {
      await serverMeter.close();
    }
  };
  const heaviest = samples.heaviest;
  const sql = new pg.Client({ connectionString: databaseUrl, application_name: 'tracker-bench:peer-plans' });
  await sql.connect();
  // The service in a fresh process of its own, as each peer is.
  const ourProcess = forkRpcChild(fileURLToPath(new URL('./service-server.ts', import.meta.url)));
  try {
    const { url: ourUrl } = await ourProcess.call<{ url: string }>('start', { databaseUrl, poolSize: plan.poolSize });
    const ourPage = await fetchPage(ourUrl, OUR_HISTORY, {}, heaviest.token);
    const loadOurs = () => load({ url: ourUrl, query: OUR_HISTORY, variants: students.map((s) => ({ variables: {}, token: s.token })) }, ourProcess.pid);

    const peers: PeerRow[] = [];
    for (const { key, module, query, note } of PEERS) {
      const peerProcess = forkRpcChild(fileURLToPath(new URL(module, import.meta.url)));
      try {
        const peer = await peerProcess.call<{ url: string; version: string; graphqlVersion: string; node: string }>('start', {
          databaseUrl,
          poolSize: plan.poolSize,
        });
        const theirPage = await fetchPage(peer.url, query, { s: heaviest.id });
        if (theirPage.ids.join() !== ourPage.ids.join() || theirPage.hasNextPage !== ourPage.hasNextPage) {
          throw new Error(
            `PostGraphile ${peer.version} answers the heaviest student's history page differently from the service ` +
              `(${theirPage.ids.length} requests, hasNextPage ${theirPage.hasNextPage}; the service: ` +
              `${ourPage.ids.length}, ${ourPage.hasNextPage}): not timing it`,
          );
        }
        const peerPlan = await checkPeerPlan(sql, key, heaviest.id, log);
        const turns: { ours: Throughput; theirs: Throughput }[] = [];
        for (let turn = 1; turn <= plan.peer.rounds; turn++) {
          const ours = await loadOurs();
          const theirs = await load({ url: peer.url, query, variants: students.map((s) => ({ variables: { s: s.id } })) }, peerProcess.pid);
          log(`  turn ${turn}: the service ${Math.round(ours.requestsPerSecond)}, PostGraphile ${peer.version} ${Math.round(theirs.requestsPerSecond)} requests/s`);
          turns.push({ ours, theirs });
        }
        const rounds = turns.map(({ ours, theirs }) => ({
          ours: round(ours.requestsPerSecond, 1),
          theirs: round(theirs.requestsPerSecond, 1),
          ratio: round(ours.requestsPerSecond / theirs.requestsPerSecond),
        }));
        // The median turn (the lower of the middle two for an even count).
        const byRatio = turns.map((_, i) => i).sort((a, b) => rounds[a]!.ratio - rounds[b]!.ratio);
        const median = turns[byRatio[Math.floor((byRatio.length - 1) / 2)]!]!;
        peers.push({
          key,
          peer: { name: 'PostGraphile', ...peer, note },
          query,
          checkedRequests: theirPage.ids.length,
          plan: peerPlan,
          ours: median.ours,
          theirs: median.theirs,
          rounds,
          ratio: {
            requestsPerSecond: round(median.ours.requestsPerSecond / median.theirs.requestsPerSecond),
            p50: round(median.ours.latency.p50 / median.theirs.latency.p50),
            p99: round(median.ours.latency.p99 / median.theirs.latency.p99),
          },
        });
      } finally {
        await peerProcess.close();
      }
    }
    return { connections: plan.connections, poolSize: plan.poolSize, query: OUR_HISTORY, peers };
  } finally {
    await ourProcess.close();
    await sql.query(`drop index if exists ${PEER_INDEX}`);
    await sql.end();
  }
}
