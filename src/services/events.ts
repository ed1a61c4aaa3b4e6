/** The append-only event log of each request, read in sequence order. */
import { and, asc, getTableColumns, getTableName, gt, inArray, lte, sql, type Column } from 'drizzle-orm';
import type { Queryable } from '../db/client.js';
import { requestEvents } from '../db/tables.js';
import { badInput } from './errors.js';
import { pageOfRows, rowsToRead } from './pages.js';

export type RequestEvent = typeof requestEvents.$inferSelect;
export type EventPage = { rows: RequestEvent[]; hasNextPage: boolean };

export const MAX_EVENT_PAGE = 500;

export function checkEventPage(first: number | null | undefined, afterSequence: number | null | undefined) {
  const size = first ?? 50;
  if (!Number.isInteger(size) || size < 1 || size > MAX_EVENT_PAGE) {
    throw badInput('first', `must be between 1 and ${MAX_EVENT_PAGE}`);
  }
  const after = afterSequence ?? 0;
  if (!Number.isInteger(after) || after < 0) throw badInput('after', 'must be a sequence number (0 or more)');
  return { first: size, afterSequence: after };
}

/**
 * One page of events for each of many requests, in one query: a window
 * numbers each request's events after the cursor and keeps a page's worth
 * (pages.ts) of them.
 */
export async function eventPagesOfRequests(
  db: Queryable,
  requestIds: readonly string[],
  page: { first: number; afterSequence: number },
): Promise<Map<string, EventPage>> {
  const read = new Map<string, RequestEvent[]>(requestIds.map((id) => [id, []]));
  if (requestIds.length > 0) {
    const ranked = db
      .select({
        ...getTableColumns(requestEvents),
        rank: sql<number>`row_number() over (partition by ${requestEvents.requestId} order by ${requestEvents.sequence})`.as('rank'),
      })
      .from(requestEvents)
      .where(and(inArray(requestEvents.requestId, [...requestIds]), gt(requestEvents.sequence, page.afterSequence)))
      .as('ranked');
    const rows = await db
      .select()
      .from(ranked)
      .where(lte(ranked.rank, rowsToRead(page.first)))
      .orderBy(asc(ranked.requestId), asc(ranked.sequence));
    for (const { rank: _rank, ...event } of rows) read.get(event.requestId)!.push(event as RequestEvent);
  }
  return new Map([...read].map(([id, events]) => [id, pageOfRows(events, page.first)]));
}

const eventColumns = Object.entries(getTableColumns(requestEvents));

/**
 * A subquery of one request's page of events (after the cursor, `take` of
 * them: rowsToRead of the page, in sequence order) as one JSON array, for a statement
 * that reads the request itself: `request` is its id column there, named with
 * its table (Drizzle leaves a one-table select's columns unqualified, and
 * inside the subquery `"id"` is the event's). bigint columns travel as text
 * (a JSON number would lose digits past 2^53).
 */
export function eventPageAsJson(request: Column) {
  const columns = eventColumns.map(([key, column]) => `"${column.name}"${column.columnType === 'PgBigInt64' ? '::text' : ''} as "${key}"`).join(', ');
  return sql<Record<string, unknown>[]>`(select coalesce(json_agg(e order by e."sequence"), '[]'::json) from (select ${sql.raw(columns)} from ${requestEvents} where ${requestEvents.requestId} = ${sql.identifier(getTableName(request.table))}.${sql.identifier(request.name)} and ${requestEvents.sequence} > ${sql.placeholder('afterSequence')} order by ${requestEvents.sequence} limit ${sql.placeholder('take')}) e)`;
}

/** eventPageAsJson's array (rowsToRead(first) long at most) as a page of `first`, each value mapped as Drizzle maps the column's. */
export function eventPageFromJson(json: Record<string, unknown>[], first: number): EventPage {
  const page = pageOfRows(json, first);
  const rows = page.rows.map((object) => {
    const event: Record<string, unknown> = {};
    for (const [key, column] of eventColumns) event[key] = object[key] == null ? null : column.mapFromDriverValue(object[key]);
    return event as RequestEvent;
  });
  return { rows, hasNextPage: page.hasNextPage };
}
