import type { Queryable } from '../db/client.js';
import { fromDatabaseError, sqlState } from './errors.js';

// Deadlock and serialization failures are safe to run again from the start.
const RETRYABLE_STATES = new Set(['40001', '40P01']);

/**
 * Runs `work` (one statement, or a whole transaction) again, up to `attempts`
 * times, if PostgreSQL aborted it for a deadlock or serialization failure,
 * and translates what the database refuses on purpose (an invalid
 * transition, a duplicate) into ServiceErrors.
 */
export async function withRetries<T>(work: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt < attempts && RETRYABLE_STATES.has(sqlState(error) ?? '')) continue;
      throw fromDatabaseError(error);
    }
  }
}

/** `work` in a transaction, with withRetries' retries and translation. */
export function inTransaction<T>(
  db: Queryable,
  work: (tx: Queryable) => Promise<T>,
  attempts = 3,
): Promise<T> {
  return withRetries(() => db.transaction(work), attempts);
}
