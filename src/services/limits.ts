/**
 * Per-user budgets on mutations (rate-limiter-flexible). The counters live in
 * the database (RateLimiterDrizzle on `rate_limits`), so every server process
 * on one database draws on the same budget; embedded PGlite uses the same store.
 */
import { RateLimiterDrizzle, RateLimiterRes } from 'rate-limiter-flexible';
import type { Queryable } from '../db/client.js';
import { rateLimits } from '../db/tables.js';
import { ServiceError } from './errors.js';
import { isExemptFromMutationLimit, type Viewer } from './access.js';

export type MutationLimiter = {
  /** Spends `count` mutations of the viewer's budget; RATE_LIMITED, with when to retry, once it is spent. */
  consume(viewer: Viewer, count: number): Promise<void>;
};

/**
 * Students and org admins have `perMinute` mutations a minute (a fixed window).
 * Workers and admins are not limited: they are the pipeline and the operators,
 * whose volume is the system's own (a worker reports every stage of every request).
 */
export function createMutationLimiter(db: Queryable, perMinute: number): MutationLimiter {
  if (perMinute === 0) return { consume: async () => {} };
  const limiter = new RateLimiterDrizzle({
    storeClient: db,
    schema: rateLimits,
    keyPrefix: 'mutations',
    points: perMinute,
    duration: 60,
    // One row a user, reused once its window has passed: bounded by the users, nothing to sweep.
    clearExpiredByTimeout: false,
  });
  return {
    async consume(viewer, count) {
      if (count === 0 || isExemptFromMutationLimit(viewer)) return;
      try {
        await limiter.consume(viewer.userId, count);
      } catch (refusal) {
        // A RateLimiterRes is a refusal; anything else (the database) is an outage, not the caller's fault.
        if (!(refusal instanceof RateLimiterRes)) throw refusal;
        const retryAfterSeconds = Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));
        throw new ServiceError(
          'RATE_LIMITED',
          `too many changes: at most ${perMinute} a minute; retry in ${retryAfterSeconds} s`,
          { retryAfterSeconds },
        );
      }
    },
  };
}
