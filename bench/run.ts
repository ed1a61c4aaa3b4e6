/**
 * One benchmark run: the machine, then each suite, into one result object
 * that `bench/index.ts` prints and writes to bench/results/. Suites are
 * independent (each creates and drops its own database), so more can join
 * (data at scale, query patterns, write path, a peer) without changing these.
 */
import { backgroundLoad } from './lib/cpu.js';
import { describeMachine, type Machine } from './lib/machine.js';
import { measureSpeed, stealPercent, stealTicks, type MachineSpeed } from './lib/speed.js';
import { serverInfo } from './lib/database.js';
import { runLiveBenchmark, type LiveResults } from './live/suite.js';
import type { Mode } from './live/plan.js';
import { runEtaBenchmark, type EtaResults } from './eta/suite.js';
import { runScaleBenchmark, SCALE_SUITES, type ScaleResults, type ScaleSuiteName } from './scale/suite.js';
import { runRetentionBenchmark, type RetentionResults } from './retention/suite.js';
import { summarizeRun, type RunSummary } from './summary.js';

/** `data`, `queries`, `peer` and `writes` share one database, loaded once (bench/scale/suite.ts). */
export const SUITES = ['live', ...SCALE_SUITES, 'eta', 'retention'] as const;
export type SuiteName = (typeof SUITES)[number];

export type BenchOptions = {
  serverUrl: string;
  mode: Mode;
  suites?: readonly SuiteName[];
  log?: (line: string) => void;
};

export type BenchResults = {
  /** Bumped when the shape of this object changes (3: `speed`; 4: the peer's turns, `rounds` and the service's side per row). */
  format: 4;
  startedAt: string;
  finishedAt: string;
  mode: Mode;
  machine: Machine;
  /** Busy share of all cores over one second with nothing of the benchmark running, before and after: is the machine quiet? */
  backgroundLoad: { before: number; after: number };
  /** How fast the machine was (bench/lib/speed.ts): absolute figures of runs on different days compare only next to these. */
  speed: MachineSpeed & { stealPercent: number | null };
  live?: LiveResults;
  /** Data at scale, query patterns, the peers and the write path. */
  scale?: ScaleResults;
  /** ETA accuracy against a naive baseline, on a simulated history (bench/eta/suite.ts). */
  eta?: EtaResults;
  /** The batched purge next to concurrent writes, on a database of its own (bench/retention/suite.ts). */
  retention?: RetentionResults;
  /** The headline figures under fixed keys (bench/summary.ts). */
  summary: RunSummary;
};

export async function runBenchmark(options: BenchOptions): Promise<BenchResults> {
  const startedAt = new Date().toISOString();
  const machine = describeMachine(await serverInfo(options.serverUrl));
  const quietMs = options.mode === 'tiny' ? 250 : 1_000;
  const before = await backgroundLoad(quietMs);
  const speed = await measureSpeed();
  const stealAtStart = stealTicks();
  const suites = options.suites ?? SUITES;
  const results: Omit<BenchResults, 'finishedAt' | 'backgroundLoad' | 'speed' | 'summary'> = { format: 4, startedAt, mode: options.mode, machine };
  if (suites.includes('live')) {
    results.live = await runLiveBenchmark({
      serverUrl: options.serverUrl,
      mode: options.mode,
      log: (line) => options.log?.(`[live] ${line}`),
    });
  }
  const scaleSuites = SCALE_SUITES.filter((name) => suites.includes(name));
  if (scaleSuites.length) {
    results.scale = await runScaleBenchmark({
      serverUrl: options.serverUrl,
      mode: options.mode,
      suites: scaleSuites as ScaleSuiteName[],
      log: (line) => options.log?.(`[scale] ${line}`),
    });
  }
  if (suites.includes('eta')) {
    results.eta = await runEtaBenchmark({ serverUrl: options.serverUrl, mode: options.mode, log: (line) => options.log?.(`[eta] ${line}`) });
  }
  if (suites.includes('retention')) {
    results.retention = await runRetentionBenchmark({
      serverUrl: options.serverUrl,
      mode: options.mode,
      log: (line) => options.log?.(`[retention] ${line}`),
    });
  }
  const after = await backgroundLoad(quietMs);
  return {
    ...results,
    backgroundLoad: { before, after },
    speed: { ...speed, stealPercent: stealPercent(stealAtStart, stealTicks()) },
    summary: summarizeRun(results.live, results.scale),
    finishedAt: new Date().toISOString(),
  };
}
