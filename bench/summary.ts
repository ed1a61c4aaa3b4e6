/**
 * The run's headline figures under fixed keys, so results files can be
 * compared mechanically. Each is computed from this run's own figures; null
 * when the run did not measure it (a suite left out, or no finite value).
 */
import { round } from './lib/stats.js';
import type { LiveResults } from './live/suite.js';
import type { PeerKey } from './scale/peer.js';
import type { ScaleResults } from './scale/suite.js';

export type RunSummary = {
  /** The service's history-page requests/s over PostGraphile 5's, same run. */
  peerRatio: number | null;
  /** The same over PostGraphile 4's. */
  peerRatioV4: number | null;
  /** The largest GraphQL p50 minus SQL p50 over the query patterns, ms (every case's first request made before). */
  readOverheadMs: number | null;
  /** The same over each case's first request (mostly a viewer's first in the process: token check and provisioning on top). */
  readFirstRequestOverheadMs: number | null;
  /** How many subscribers of one request the fan-out phase had. */
  fanoutSubscribers: number | null;
  /** From just before the change was sent until the last subscriber had it, p50 of the rounds, ms. */
  fanoutLastMs: number | null;
  heapPerSubscriptionBytes: number | null;
  /** The most changes/s the service delivered while keeping up, over the raw NOTIFY rate in the same run. */
  deliveryCeilingRatio: number | null;
  /** API requests/s over raw SQL with the triggers on, per mutation. */
  writeRatioSubmit: number | null;
  writeRatioReport: number | null;
};

const figure = (value: number | undefined): number | null => (value !== undefined && Number.isFinite(value) ? value : null);

export function summarizeRun(live: LiveResults | undefined, scale: ScaleResults | undefined): RunSummary {
  const peerRatio = (key: PeerKey) => figure(scale?.peer?.peers.find((row) => row.key === key)?.ratio.requestsPerSecond);
  const figures = scale?.queries?.figures ?? [];
  const largestOverhead = (graphqlMs: (f: (typeof figures)[number]) => { p50: number } | null | undefined) => {
    const overheads = figures.flatMap((f) => {
      const measured = graphqlMs(f);
      return measured ? [measured.p50 - f.sqlMs.p50] : [];
    });
    return overheads.length ? figure(round(Math.max(...overheads))) : null;
  };
  const writeRatio = (name: string) => figure(scale?.writes?.figures.find((f) => f.name === name)?.ratioToTriggersOn);
  return {
    peerRatio: peerRatio('v5'),
    peerRatioV4: peerRatio('v4'),
    readOverheadMs: largestOverhead((f) => f.graphqlMs),
    readFirstRequestOverheadMs: largestOverhead((f) => f.graphqlFirstMs),
    fanoutSubscribers: figure(live?.fanout.subscribers),
    fanoutLastMs: figure(live?.fanout.last.p50),
    heapPerSubscriptionBytes: figure(live?.heap.perSubscriptionBytes),
    deliveryCeilingRatio: figure(live?.throughput.ratio),
    writeRatioSubmit: writeRatio('submitContentRequest'),
    writeRatioReport: writeRatio('reportStage'),
  };
}
