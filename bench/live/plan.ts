/** How long and how large each live-path measurement is, per mode. */
export type Mode = 'tiny' | 'quick' | 'full';

export type LivePlan = {
  mode: Mode;
  /** Requests the load writer changes, each with one contentRequestProgress subscription in the service phases. */
  poolSize: number;
  /** pg connections the writer commits on (each change its own transaction at fixed rates). */
  writerConnections: number;
  latency: { rates: number[]; warmupMs: number; durationMs: (rate: number) => number; drainMs: number };
  ramp: {
    startRate: number;
    maxRate: number;
    stepMs: number;
    drainMs: number;
    /** Unmeasured load at startRate before the first step, and after the service's subscriptions are reopened. */
    warmupMs: number;
    /** Extra steps halving the interval between the last good and the first bad rate. */
    bisect: number;
    /** Most changes the writer puts in one transaction when it is behind. */
    maxBatch: number;
  };
  /** Subscribers of one request for the fan-out figure. */
  subscriptions: number;
  /** Idle subscriptions, each on its own request, open at once for the heap figure. */
  heapSubscriptions: number;
  subscriptionsPerSocket: number;
  /** Sockets opened (with no subscription) for the heap-per-socket figure. */
  socketSample: number;
  /** Subscriptions opened again after the ramps, to see what a larger request_events costs. */
  lateSubscribeSample: number;
  fanout: { warmupRounds: number; rounds: number };
};

export function livePlan(mode: Mode): LivePlan {
  switch (mode) {
    case 'tiny':
      return {
        mode,
        poolSize: 40,
        writerConnections: 2,
        latency: { rates: [100, 1000], warmupMs: 200, durationMs: () => 500, drainMs: 2_000 },
        ramp: { startRate: 100, maxRate: 200, stepMs: 500, drainMs: 2_000, warmupMs: 200, bisect: 0, maxBatch: 200 },
        subscriptions: 60,
        heapSubscriptions: 60,
        subscriptionsPerSocket: 20,
        socketSample: 20,
        lateSubscribeSample: 20,
        fanout: { warmupRounds: 1, rounds: 2 },
      };
    case 'quick':
      return {
        mode,
        poolSize: 1_000,
        writerConnections: 4,
        latency: { rates: [100, 1000], warmupMs: 1_000, durationMs: (rate) => (rate <= 100 ? 5_000 : 3_000), drainMs: 3_000 },
        ramp: { startRate: 1_000, maxRate: 128_000, stepMs: 2_000, drainMs: 3_000, warmupMs: 1_000, bisect: 3, maxBatch: 1_000 },
        subscriptions: 1_000,
        heapSubscriptions: 1_000,
        subscriptionsPerSocket: 100,
        socketSample: 500,
        lateSubscribeSample: 200,
        fanout: { warmupRounds: 2, rounds: 5 },
      };
    case 'full':
      return {
        mode,
        poolSize: 2_000,
        writerConnections: 4,
        latency: { rates: [100, 1000], warmupMs: 3_000, durationMs: (rate) => (rate <= 100 ? 30_000 : 20_000), drainMs: 5_000 },
        ramp: { startRate: 1_000, maxRate: 256_000, stepMs: 5_000, drainMs: 5_000, warmupMs: 2_000, bisect: 4, maxBatch: 2_000 },
        subscriptions: 10_000,
        heapSubscriptions: 20_000,
        subscriptionsPerSocket: 100,
        socketSample: 1_000,
        lateSubscribeSample: 500,
        fanout: { warmupRounds: 3, rounds: 10 },
      };
  }
}
