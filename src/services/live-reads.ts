/**
 * The live layer's reads: snapshots, and replays of what a subscriber missed
 * in the form the notifications carry (services/live-events.ts), so replayed
 * and live events are one kind.
 */
import { and, asc, eq, gt, inArray, lte, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Queryable } from '../db/client.js';
import { contentRequests, requestEvents, retentionWatermark } from '../db/tables.js';
import { badInput, notFound } from './errors.js';
import { purgedThroughPosition } from './retention.js';
import { selectLiveEvents, type LiveEvent } from './live-events.js';
import { inFlightStatuses } from './pipeline.js';
import { isStalled } from './stalls.js';
import { NEWEST_FIRST, type ContentRequest, type RequestStatus } from './requests.js';
import { optionalText, parseInput, uuid } from './validation.js';
import { withinScope, type Viewer } from './access.js';

/** Every event committed after `position`, for the hub's catch-up. */
export function eventsAfterPosition(db: Queryable, position: bigint, limit: number): Promise<LiveEvent[]> {
  return selectLiveEvents(db, gt(requestEvents.feedPosition, position), limit);
}

/**
 * The feed's newest position: the newest event's, or retention's watermark
 * when retention removed every event after it (a cursor handed out then must
 * not fall below the watermark and be refused).
 */
export async function latestPosition(db: Queryable): Promise<bigint> {
  const [row] = await db
    .select({
      position: sql<string>`greatest(
        (select coalesce(max(${requestEvents.feedPosition}), 0) from ${requestEvents}),
        (select coalesce(max(${retentionWatermark.purgedThroughPosition}), 0) from ${retentionWatermark}))::text`,
    })
    .from(sql`(select 1) as one`);
  return BigInt(row?.position ?? 0);
}

/**
 * Refuses a resume cursor the feed cannot continue from without a gap: one
 * from the future would hold back every event up to it, and one below
 * retention's watermark may have missed events that are gone. `only:
 * 'purged'` checks the watermark alone (again, after a replay). Returns the
 * newest position it saw (the cursor itself with `only`).
 */
export async function checkFeedCursor(db: Queryable, position: bigint, only?: 'purged'): Promise<bigint> {
  const [latest, purged] = await Promise.all([only ? position : latestPosition(db), purgedThroughPosition(db)]);
  if (position > latest) throw badInput('after', 'is ahead of the feed: not a cursor this API issued');
  if (position < purged) {
    throw badInput('after', 'points into history that retention has removed: subscribe without after for a fresh snapshot');
  }
  return latest;
}

/**
 * One request's events after a sequence (up to `untilSequence` when given),
 * `limit` at a time: a caller pages on with the last sequence it got.
 */
export function requestEventsAfter(
  db: Queryable,
  requestId: string,
  afterSequence: number,
  limit: number,
  untilSequence?: number,
): Promise<LiveEvent[]> {
  return selectLiveEvents(
    db,
    and(
      eq(requestEvents.requestId, requestId),
      gt(requestEvents.sequence, afterSequence),
      untilSequence === undefined ? undefined : lte(requestEvents.sequence, untilSequence),
    ),
    limit,
    // (request_id, sequence) is the index that serves it.
    asc(requestEvents.sequence),
  );
}

export type FeedFilter = {
  statuses?: readonly RequestStatus[];
  studentId?: string;
  organizationId?: string;
  /** Only stalls: the snapshot lists stalled requests, then each STAGE_STALLED event. */
  stalled?: boolean;
};

/** The event a stalled-only feed sends (services/stalls.ts writes it). */
export const STALL_EVENT = 'stage_stalled' satisfies LiveEvent['eventType'];

const feedFilterInput = z.object({ studentId: optionalText(100), organizationId: optionalText(100) });

/** The feed filter's ids checked as any other text input (a NUL would fail the snapshot's statement). */
export function parseFeedFilter(filter: FeedFilter): FeedFilter {
  const { studentId, organizationId } = parseInput(feedFilterInput, { studentId: filter.studentId, organizationId: filter.organizationId });
  return { ...filter, studentId: studentId ?? undefined, organizationId: organizationId ?? undefined };
}

const feedOwnerConditions = (filter: FeedFilter) => [
  filter.studentId ? eq(contentRequests.studentId, filter.studentId) : undefined,
  filter.organizationId ? eq(contentRequests.organizationId, filter.organizationId) : undefined,
];

/** The many-request feed's replay: events after `position` the viewer may see and the filter keeps. */
export function feedEventsAfter(
  db: Queryable,
  viewer: Viewer,
  filter: FeedFilter,
  position: bigint,
  limit: number,
): Promise<LiveEvent[]> {
  return selectLiveEvents(
    db,
    withinScope(
      viewer,
      gt(requestEvents.feedPosition, position),
      filter.statuses?.length ? inArray(requestEvents.newStatus, [...filter.statuses]) : undefined,
      filter.stalled ? eq(requestEvents.eventType, STALL_EVENT) : undefined,
      ...feedOwnerConditions(filter),
    ),
    limit,
  );
}

export type RequestSnapshot = { request: ContentRequest; sequence: number; position: bigint };

// The request and its newest event, read by one statement: one MVCC snapshot.
// Spelled out: Drizzle would render the column unqualified, and "id" would
// mean request_events.id. Ordered by sequence with a limit, so the
// (request_id, sequence) index serves it; max(feed_position) would walk the
// feed_position index across every request's events.
const newestEvent = {
  sequence: sql<number>`coalesce((select e.sequence from request_events e where e.request_id = content_requests.id order by e.sequence desc limit 1), 0)`,
  position: sql<string>`coalesce((select e.feed_position from request_events e where e.request_id = content_requests.id order by e.sequence desc limit 1), 0)::text`,
};

/**
 * NOT_FOUND when absent or out of reach; when `resuming` (afterSequence),
 * BAD_USER_INPUT on afterSequence instead: retention may have removed the
 * request with its history, and a client resuming it must start over. The
 * three cases answer alike, so nobody can probe for others' ids.
 */
export async function requestSnapshot(
  db: Queryable,
  viewer: Viewer,
  id: string,
  options: { resuming?: boolean } = {},
): Promise<RequestSnapshot> {
  const requestId = parseInput(uuid, id, 'id');
  const [row] = await db
    .select({ request: contentRequests, ...newestEvent })
    .from(contentRequests)
    .where(withinScope(viewer, eq(contentRequests.id, requestId)));
  if (!row && options.resuming) {
    throw badInput('afterSequence', 'no history to resume: the request does not exist, is out of reach, or retention removed it after it finished');
  }
  if (!row) throw notFound('content request', requestId);
  return { request: row.request, sequence: Number(row.sequence), position: BigInt(row.position) };
}

/**
 * The many-request feed's opening: the requests in reach whose status the
 * filter keeps (in-flight ones by default), newest first, and the feed
 * position they reflect, read in one snapshot (REPEATABLE READ).
 */
export async function feedSnapshot(
  db: Queryable,
  viewer: Viewer,
  filter: FeedFilter,
  limit: number,
): Promise<{ requests: RequestSnapshot[]; position: bigint }> {
  const statuses = filter.statuses?.length ? filter.statuses : await inFlightStatuses(db);
  return db.transaction(
    async (tx) => {
      const position = await latestPosition(tx);
      const rows = await tx
        .select({ request: contentRequests, ...newestEvent })
        .from(contentRequests)
        .where(
          withinScope(
            viewer,
            inArray(contentRequests.status, [...statuses]),
            filter.stalled ? isStalled : undefined,
            ...feedOwnerConditions(filter),
          ),
        )
        .orderBy(...NEWEST_FIRST)
        .limit(limit);
      return {
        requests: rows.map((row) => ({ request: row.request, sequence: Number(row.sequence), position: BigInt(row.position) })),
        position,
      };
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  );
}
