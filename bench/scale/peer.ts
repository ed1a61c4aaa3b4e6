/**
 * The peer phase: the same history-page query from the service and from
 * PostGraphile (bench/scale/peer-server.ts), same concurrency, same pool size.
 */
import { fileURLToPath } from 'node:url';
import { CpuMeter } from '../lib/cpu.js';
import { forkRpcChild, type RpcChild } from '../lib/rpc.js';
import { round } from '../lib/stats.js';
import type { CannonParams, CannonResult, Throughput } from './client.js';
import type { ScalePlan } from './plan.js';
import type { Samples } from './samples.js';

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

const OUR_HISTORY = `query { contentRequests(first: 20) { edges { node { id status createdAt topic progressPercentage currentStage } } pageInfo { hasNextPage endCursor } } }`;
const PEER_HISTORY = `query($s: String!) { allContentRequests(condition: { studentId: $s }, orderBy: [CREATED_AT_DESC, ID_DESC], first: 20) { edges { node { id status createdAt topic progressPercentage currentStage } } pageInfo { hasNextPage endCursor } } }`;

export async function measurePeer(
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
