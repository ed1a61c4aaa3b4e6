/**
 * What the database has committed, read the way the live layer reads it:
 * the truth live tests hold subscriptions to. The service's own reads are
 * used, so a test and the replay cannot disagree on what an event is.
 */
import type { Db } from '../../src/db/client.js';
import type { LiveEvent } from '../../src/services/live-events.js';
import { feedEventsAfter, latestPosition, requestEventsAfter } from '../../src/services/live-reads.js';

export type { LiveEvent };

// More than any test writes: "every event" in one read.
const ALL = 1_000_000;

/** Unrestricted, as an admin reads the feed. */
const ADMIN: Parameters<typeof feedEventsAfter>[1] = { userId: 'test-admin', role: 'admin', organizationId: null };

/** The newest feed position committed so far (0 when there is none). */
export const committedPosition = (db: Db): Promise<bigint> => latestPosition(db);

/** One request's events after `sequence`, in sequence order. */
export const committedRequestEvents = (db: Db, requestId: string, sequence: number): Promise<LiveEvent[]> =>
  requestEventsAfter(db, requestId, sequence, ALL);

/** Every request's events after `position`, in feed order. */
export const committedFeedEvents = (db: Db, position: bigint | string): Promise<LiveEvent[]> =>
  feedEventsAfter(db, ADMIN, {}, BigInt(position), ALL);

/** Anything that runs SQL text: a pg pool or client, or PGlite. */
type SqlRunner = { query(text: string): Promise<{ rows: unknown[] }> };

/**
 * The backends of notification listeners on the current database (pg-listen's
 * connection, named `<application>:listener`), found as an operator would.
 */
export async function listenerBackends(runner: SqlRunner): Promise<{ pid: number; application_name: string }[]> {
  const { rows } = await runner.query(
    `select pid, application_name from pg_stat_activity
      where datname = current_database() and application_name like '%:listener'`,
  );
  return rows as { pid: number; application_name: string }[];
}
