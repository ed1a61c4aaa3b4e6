/**
 * The two subscriptions the client watches, what they send, and where each
 * resumes: one request by its gap-free `sequence`, the many-request feed by
 * its `cursor` (a commit position). The selections match schema.graphql.
 */
import type { Resumable } from './watch.js';

export type RequestUpdate = {
  kind: 'SNAPSHOT' | 'EVENT';
  /** Resume watchUpdates after this update with `{ after: cursor }`. */
  cursor: string;
  requestId: string;
  /** Resume watchRequest after this update with `{ afterSequence: sequence }`. */
  sequence: number;
  status: string;
  stage: string | null;
  progressPercentage: number;
  /** The change that led here; null for a snapshot. */
  event: {
    id: string;
    sequence: number;
    eventType: string;
    oldStatus: string | null;
    newStatus: string;
    stage: string | null;
    progressPercentage: number;
    createdAt: string;
  } | null;
  /** When the request should be done (the service's estimate), on watchUpdates with `withEta: true` only; null once finished. */
  estimatedCompletionAt?: string | null;
  /** The request's description and error, on watchUpdates with `withRequest: true` only. */
  request?: { topic: string; errorStage: string | null; errorMessage: string | null } | null;
};

export type UpdatesFilter = { status?: string[]; studentId?: string; organizationId?: string };

const UPDATE_FIELDS = `kind cursor requestId sequence status stage progressPercentage
    event { id sequence eventType oldStatus newStatus stage progressPercentage createdAt }`;

const REQUEST_PROGRESS = `subscription TrackerRequestProgress($id: ID!, $afterSequence: BigInt) {
  contentRequestProgress(id: $id, afterSequence: $afterSequence) { ${UPDATE_FIELDS} }
}`;

/** The feed's extra fields, asked for only by the callers that show them (each costs the service work per update). */
export type UpdateExtras = { withRequest?: boolean | undefined; withEta?: boolean | undefined };

const requestUpdatesQuery = ({ withRequest, withEta }: UpdateExtras) => `subscription TrackerRequestUpdates($filter: ContentRequestUpdatesFilter, $after: String) {
  contentRequestUpdates(filter: $filter, after: $after) { ${UPDATE_FIELDS}${withEta ? ' estimatedCompletionAt' : ''}${withRequest ? ' request { topic errorStage errorMessage }' : ''} }
}`;

// A request in one of these changes no more: its stream ends.
const FINISHED_STATUSES: ReadonlySet<string> = new Set(['COMPLETED', 'CANCELLED']);

/** The wire form (BigInt sequences as decimal strings) as numbers: a request's sequence stays far below 2^53. */
function toUpdate(data: Record<string, unknown>): RequestUpdate {
  const wire = data as Omit<RequestUpdate, 'sequence' | 'event'> & {
    sequence: string;
    event: (Omit<NonNullable<RequestUpdate['event']>, 'sequence'> & { sequence: string }) | null;
  };
  return {
    ...wire,
    sequence: Number(wire.sequence),
    event: wire.event ? { ...wire.event, sequence: Number(wire.event.sequence) } : null,
  };
}

/** One request, from `afterSequence` if given; each reconnection resumes after the last sequence yielded. */
export function requestProgress(id: string, afterSequence?: number): Resumable<RequestUpdate> {
  let lastSequence = afterSequence;
  return {
    operation: () => ({ query: REQUEST_PROGRESS, variables: { id, afterSequence: lastSequence ?? null } }),
    updateOf: toUpdate,
    advance(update) {
      if (lastSequence !== undefined && update.sequence <= lastSequence) return false;
      lastSequence = update.sequence;
      return true;
    },
    isLast: (update) => FINISHED_STATUSES.has(update.status),
    // Resuming on a request that had finished, the service replays what is left (here, nothing) and completes.
    isOverWhenCompletedEmpty: () => lastSequence !== undefined,
  };
}

/**
 * Every request in reach, from the cursor `after` if given. Snapshots come
 * only on a fresh subscription and share its cursor; events after it carry
 * growing cursors, so an event at or below the last cursor yielded is a repeat.
 */
export function requestUpdates(filter: UpdatesFilter, after?: string, extras: UpdateExtras = {}): Resumable<RequestUpdate> {
  let lastCursor = after === undefined ? undefined : BigInt(after);
  const query = requestUpdatesQuery(extras);
  return {
    operation: () => ({ query, variables: { filter, after: lastCursor?.toString() ?? null } }),
    updateOf: toUpdate,
    advance(update) {
      const cursor = BigInt(update.cursor);
      if (update.kind === 'EVENT' && lastCursor !== undefined && cursor <= lastCursor) return false;
      lastCursor = cursor;
      return true;
    },
    isLast: () => false,
    // The feed never finishes: an empty completion is the service stopping.
    isOverWhenCompletedEmpty: () => false,
  };
}
