/**
 * The live-event contract: what one committed change of one request looks
 * like to the live layer, in its two forms. The notified form is the payload
 * `tg_request_events__publish()` (drizzle/0005) sends at commit; the replayed
 * form is the same event read back from request_events. Both are typed
 * against `LiveEvent` here, so a field added to one and not the other fails
 * the type check, and test/db/live-events.test.ts holds them deep-equal.
 *
 * A new field: the trigger (a migration, and its rollback), `LiveEvent`, the
 * payload schema and the replay columns below; the GraphQL type only if
 * clients are to see it.
 */
import { asc, eq, sql, type Column, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Queryable } from '../db/client.js';
import { contentRequests, requestEvents, requestEventType } from '../db/tables.js';
import type { RequestStatus } from './requests.js';

/** The channel the trigger notifies on. */
export const REQUEST_EVENTS_CHANNEL = 'content_request_events';

/** One committed change of one request, live or replayed. */
export type LiveEvent = {
  requestId: string;
  /** request_events.id, as text: a bigint must not pass through a float. Not an order. */
  eventId: string;
  /** request_events.feed_position: commit order across all requests. */
  position: bigint;
  /** 1, 2, 3 … within the request. */
  sequence: number;
  eventType: (typeof requestEventType.enumValues)[number];
  oldStatus: RequestStatus | null;
  newStatus: RequestStatus;
  stage: string | null;
  progress: number;
  studentId: string;
  organizationId: string | null;
  /** ISO 8601 in UTC, to the millisecond (what a JavaScript Date holds). */
  createdAt: string;
};

// Any UUID PostgreSQL accepts (z.uuid() would insist on an RFC version and drop the rest).
const anyUuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
const digits = z.string().regex(/^\d+$/);
// A status column's value: the database's enum is the authority on which
// statuses exist (a migration may add one), so any non-empty text passes.
const databaseStatus = z.custom<RequestStatus>((value) => typeof value === 'string' && value.length > 0);
// The trigger sends a timestamptz as JSON renders it (microseconds, the
// session's offset); the replay has a Date. Both become the same string.
const instant = z.string().transform((value, context) => {
  const date = new Date(value);
  if (!Number.isNaN(date.getTime())) return date.toISOString();
  context.addIssue({ code: 'custom', message: 'not a timestamp' });
  return z.NEVER;
});

const liveEventNotification = z.object({
  requestId: anyUuid,
  eventId: digits,
  position: digits.transform((value) => BigInt(value)),
  sequence: z.number().int().positive(),
  eventType: z.enum(requestEventType.enumValues),
  oldStatus: databaseStatus.nullable(),
  newStatus: databaseStatus,
  stage: z.string().nullable(),
  progress: z.number().int().min(0).max(100),
  studentId: z.string(),
  organizationId: z.string().nullable(),
  createdAt: instant,
});

// Compiles only while the parsed payload is exactly a LiveEvent: no field, or
// field type, that one has and the other lacks.
type SameType<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Holds<T extends true> = T;
type _NotifiedFormIsLiveEvent = Holds<SameType<z.output<typeof liveEventNotification>, LiveEvent>>;

/** Parses one payload; throws on anything that is not the trigger's shape. */
export function parseLiveEventNotification(payload: string): LiveEvent {
  return liveEventNotification.parse(JSON.parse(payload));
}

/** The replayed form's columns: request_events joined with its request. */
const liveEventColumns = {
  requestId: requestEvents.requestId,
  eventId: sql<string>`${requestEvents.id}::text`,
  position: requestEvents.feedPosition,
  sequence: requestEvents.sequence,
  eventType: requestEvents.eventType,
  oldStatus: requestEvents.oldStatus,
  newStatus: requestEvents.newStatus,
  stage: requestEvents.stage,
  progress: requestEvents.progressPercentage,
  studentId: contentRequests.studentId,
  organizationId: contentRequests.organizationId,
  createdAt: requestEvents.createdAt,
} satisfies Record<keyof LiveEvent, Column | SQL>;

/**
 * Events read back from request_events in their notified form, `limit` of
 * them, in `order` (feed position by default; within one request that is
 * also sequence order).
 */
export function selectLiveEvents(
  db: Queryable,
  where: SQL | undefined,
  limit: number,
  order: SQL = asc(requestEvents.feedPosition),
): Promise<LiveEvent[]> {
  return db
    .select(liveEventColumns)
    .from(requestEvents)
    .innerJoin(contentRequests, eq(contentRequests.id, requestEvents.requestId))
    .where(where)
    .orderBy(order)
    .limit(limit)
    .then((rows) =>
      rows.map(({ position, createdAt, ...sameInBothForms }): LiveEvent => {
        // Numbered at commit: only the writing transaction itself sees a NULL.
        if (position === null) throw new Error(`request event ${sameInBothForms.eventId} read before its commit`);
        return { ...sameInBothForms, position, createdAt: createdAt.toISOString() };
      }),
    );
}
