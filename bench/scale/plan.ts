/** How large and how long the at-scale suites (data, queries, writes, peer) run, per mode. */
import type { Mode } from '../live/plan.js';

export type ScalePlan = {
  mode: Mode;
  /** content_requests rows the loader writes (stages and ~5 events each come with them). */
  requests: number;
  students: number;
  organizations: number;
  /** The service's pg pool, PostGraphile's pool, and the raw SQL writers' connection count. */
  poolSize: number;
  /** Runs per pattern, each side stopping early (after at least 20) once it has taken budgetMs. */
  /**
   * One request at a time. Both sides (SQL and GraphQL) send `warmupRuns` untimed first, or what
   * fits in `warmupMs`: a running service has long since compiled its hot paths (V8 optimizes a
   * function after some thousands of calls; a hundred leave much of the path in its interpreter).
   */
  queries: { sqlRuns: number; graphqlRuns: number; warmupRuns: number; warmupMs: number; samples: number; budgetMs: number };
  /** HTTP connections the load generator keeps busy (autocannon), for the write path and the peer. */
  connections: number;
  writes: { apiMs: number; rawMs: number; warmupMs: number };
  /**
   * The service and each peer are timed in turns, `rounds` of each, and the ratio is the median of
   * the turns' ratios: this machine's speed drifts over seconds (bench/README.md, "Machine speed"),
   * and one timing of each side, one after the other, moved the ratio 1.2–1.8× between runs.
   */
  peer: { durationMs: number; warmupMs: number; rounds: number };
};

export function scalePlan(mode: Mode): ScalePlan {
  switch (mode) {
    case 'tiny':
      return {
        mode,
        requests: 5_000,
        students: 500,
        organizations: 20,
        poolSize: 10,
        queries: { sqlRuns: 20, graphqlRuns: 20, warmupRuns: 3, warmupMs: 500, samples: 10, budgetMs: 2_000 },
        connections: 10,
        writes: { apiMs: 500, rawMs: 400, warmupMs: 100 },
        peer: { durationMs: 500, warmupMs: 100, rounds: 1 },
      };
    case 'quick':
      return {
        mode,
        requests: 100_000,
        students: 10_000,
        organizations: 100,
        poolSize: 20,
        queries: { sqlRuns: 200, graphqlRuns: 100, warmupRuns: 2_000, warmupMs: 2_000, samples: 100, budgetMs: 2_500 },
        connections: 20,
        writes: { apiMs: 2_000, rawMs: 1_500, warmupMs: 300 },
        peer: { durationMs: 2_500, warmupMs: 300, rounds: 5 },
      };
    case 'full':
      return {
        mode,
        requests: 1_000_000,
        students: 10_000,
        organizations: 100,
        poolSize: 20,
        queries: { sqlRuns: 1_000, graphqlRuns: 500, warmupRuns: 4_000, warmupMs: 4_000, samples: 200, budgetMs: 8_000 },
        connections: 20,
        writes: { apiMs: 10_000, rawMs: 5_000, warmupMs: 1_000 },
        peer: { durationMs: 5_000, warmupMs: 500, rounds: 5 },
      };
  }
}
