/**
 * The two live streams, built on the hub:
 *
 * - one request: a snapshot (or, resuming, the events after the client's last
 *   sequence), then every change, in sequence order;
 * - many requests (a student's own, an organization's, everything): a
 *   snapshot of the requests in reach (or, resuming, the events after the
 *   client's cursor), then every change, in feed-position (commit) order.
 *
 * Each stream subscribes to the hub before it reads its starting point, and
 * drops what it has already sent by sequence or position, so the seam between
 * replayed and live events has neither a gap nor a duplicate.
 */
import { Repeater } from '@repeaterjs/repeater';
import type { Queryable } from '../db/client.js';
import { ServiceError, badInput } from '../services/errors.js';
import {
  feedEventsAfter,
  feedSnapshot,
  latestPosition,
  parseFeedFilter,
  requestEventsAfter,
  requestSnapshot,
  TERMINAL,
  type FeedFilter,
  type LiveEvent,
} from '../services/feed.js';
import type { ContentRequest } from '../services/requests.js';
import { canSeeRequest, type Viewer } from '../services/viewer.js';
import type { EventHub, Topic } from './hub.js';

export type Update =
  | { kind: 'snapshot'; request: ContentRequest; sequence: number; position: bigint }
  | { kind: 'event'; event: LiveEvent };

export type LiveDependencies = {
  db: Queryable;
  hub: EventHub;
  /** Aborted when the server stops: every stream then completes. */
  closing: AbortSignal;
};

/** A client this many updates behind is cut off; it resumes from its last cursor. */
export const MAX_UNREAD_UPDATES = 1_000;
const FEED_SNAPSHOT_LIMIT = 100;
const REPLAY_BATCH = 1_000;

/**
 * Subscribes to a hub topic at once and holds events until the stream is
 * ready for them, so nothing between subscribing and the starting point is lost.
 */
function holdEvents(hub: EventHub, topic: Topic) {
  const held: LiveEvent[] = [];
  let forward: ((event: LiveEvent) => void) | undefined;
  const unsubscribe = hub.subscribe(topic, (event) => (forward ? forward(event) : held.push(event)));
  return {
    unsubscribe,
    /** Hands over what was held, then every later event, to `handler`. */
    release(handler: (event: LiveEvent) => void) {
      forward = handler;
      for (const event of held.splice(0)) handler(event);
    },
  };
}

type StreamSetup = {
  /** The updates that open the stream (a snapshot or a replay), in order. */
  opening(): AsyncIterable<Update>;
  /** What is sent already, so a live event at or below it is a duplicate. */
  isNew(event: LiveEvent): boolean;
  /** What was missed before `event` (a gap), in order; undefined when nothing was (the usual case, kept off the hot path's awaits). */
  missedBefore?(event: LiveEvent): AsyncIterable<LiveEvent> | undefined;
  /** Records the event as sent. */
  sent(event: LiveEvent): void;
  keep(event: LiveEvent): boolean;
  /** True once the stream has nothing more to say (a finished request). */
  finished(update: Update): boolean;
  /** The opening already says everything (resuming on a request that had finished). */
  endsAfterOpening?: boolean;
};

function liveStream(deps: LiveDependencies, held: ReturnType<typeof holdEvents>, setup: StreamSetup): AsyncIterable<Update> {
  return new Repeater<Update>(async (push, stop) => {
    let unread = 0;
    // Returns the push: the opening awaits it, so a long replay goes at the
    // client's pace; live updates count as unread until the client takes them.
    const emit = (update: Update): Promise<unknown> | undefined => {
      if (unread >= MAX_UNREAD_UPDATES) {
        stop(new ServiceError('CONFLICT', `more than ${MAX_UNREAD_UPDATES} updates unread: resubscribe from your last cursor`));
        return undefined;
      }
      unread++;
      const taken = push(update).then(() => unread--);
      if (setup.finished(update)) stop();
      return taken;
    };
    const deliver = (event: LiveEvent) => {
      if (!setup.isNew(event)) return undefined;
      setup.sent(event);
      return setup.keep(event) ? emit({ kind: 'event', event }) : undefined;
    };

    // Everything runs one step at a time, in arrival order.
    let steps: Promise<void> = (async () => {
      for await (const update of setup.opening()) {
        await (update.kind === 'event' ? deliver(update.event) : emit(update));
      }
      if (setup.endsAfterOpening) stop();
    })();
    const enqueue = (step: () => Promise<void>) => {
      steps = steps.then(step).catch((error: unknown) => stop(error));
    };
    enqueue(async () => undefined); // surfaces an opening failure through stop()
    held.release((event) =>
      enqueue(async () => {
        if (!setup.isNew(event)) return;
        const missed = setup.missedBefore?.(event);
        // A gap is replayed at the client's pace, like the opening; a live event counts as unread.
        if (missed) for await (const earlier of missed) await deliver(earlier);
        void deliver(event);
      }),
    );

    const onClosing = () => stop();
    if (deps.closing.aborted) stop();
    deps.closing.addEventListener('abort', onClosing);
    await stop;
    deps.closing.removeEventListener('abort', onClosing);
    held.unsubscribe();
  });
}

/** One request's events after `afterSequence` (up to `untilSequence`), read a batch at a time. */
async function* replayRequest(db: Queryable, requestId: string, afterSequence: number, untilSequence?: number) {
  for (let after = afterSequence; ; ) {
    const events = await requestEventsAfter(db, requestId, after, REPLAY_BATCH, untilSequence);
    yield* events;
    if (events.length < REPLAY_BATCH) return;
    after = events.at(-1)!.sequence;
  }
}

/** One request: snapshot or replay after `afterSequence`, then live. NOT_FOUND when out of reach. */
export async function requestProgressStream(
  deps: LiveDependencies,
  viewer: Viewer,
  requestId: string,
  afterSequence: number | null,
): Promise<AsyncIterable<Update>> {
  // Notifications carry PostgreSQL's lower-case form of the UUID.
  const id = requestId.toLowerCase();
  const held = holdEvents(deps.hub, `request:${id}`);
  let snapshot: Awaited<ReturnType<typeof requestSnapshot>>;
  try {
    snapshot = await requestSnapshot(deps.db, viewer, id); // also the access check
    if (afterSequence !== null && (!Number.isSafeInteger(afterSequence) || afterSequence < 0 || afterSequence > snapshot.sequence)) {
      // A sequence from the future would silently hold back every event up to it.
      throw badInput('afterSequence', `must be a sequence this request has reached (now ${snapshot.sequence})`);
    }
  } catch (error) {
    held.unsubscribe();
    throw error;
  }
  const resuming = afterSequence !== null;
  let lastSequence = afterSequence ?? snapshot.sequence;
  return liveStream(deps, held, {
    async *opening() {
      if (!resuming) yield { kind: 'snapshot', ...snapshot };
      else for await (const event of replayRequest(deps.db, id, lastSequence)) yield { kind: 'event', event };
    },
    isNew: (event) => event.sequence > lastSequence,
    missedBefore: (event) =>
      event.sequence > lastSequence + 1 ? replayRequest(deps.db, id, lastSequence, event.sequence - 1) : undefined,
    sent: (event) => {
      lastSequence = event.sequence;
    },
    keep: (event) => canSeeRequest(viewer, event),
    finished: (update) =>
      TERMINAL.has(update.kind === 'snapshot' ? update.request.status : update.event.newStatus),
    // A finished request changes no more: the replay is all there is.
    endsAfterOpening: resuming && TERMINAL.has(snapshot.request.status),
  });
}

/** Which hub topic serves a viewer's feed: the narrowest that holds everything they may see. */
function feedTopic(viewer: Viewer, filter: FeedFilter): Topic {
  switch (viewer.role) {
    case 'student':
      return `student:${viewer.userId}`;
    case 'org_admin':
      if (!viewer.organizationId) throw new ServiceError('FORBIDDEN', 'an org admin without an organization has no feed');
      return `organization:${viewer.organizationId}`;
    default:
      if (filter.studentId) return `student:${filter.studentId}`;
      if (filter.organizationId) return `organization:${filter.organizationId}`;
      return 'all';
  }
}

function parseCursor(after: string): bigint {
  if (!/^\d{1,19}$/.test(after)) throw badInput('after', 'is not a cursor this API issued');
  return BigInt(after);
}

/** Many requests: snapshot (or replay after the cursor `after`), then live, in commit order. */
export async function requestUpdatesStream(
  deps: LiveDependencies,
  viewer: Viewer,
  given: FeedFilter,
  after: string | null,
): Promise<AsyncIterable<Update>> {
  const filter = parseFeedFilter(given);
  let lastPosition = after === null ? null : parseCursor(after);
  const held = holdEvents(deps.hub, feedTopic(viewer, filter));
  let snapshot: Awaited<ReturnType<typeof feedSnapshot>> | null = null;
  try {
    if (lastPosition === null) {
      snapshot = await feedSnapshot(deps.db, viewer, filter, FEED_SNAPSHOT_LIMIT);
      lastPosition = snapshot.position;
    } else if (lastPosition > (await latestPosition(deps.db))) {
      // A cursor from the future would silently hold back every event up to it.
      throw badInput('after', 'is ahead of the feed: not a cursor this API issued');
    }
  } catch (error) {
    held.unsubscribe();
    throw error;
  }
  let position: bigint = lastPosition;
  const statuses = filter.statuses?.length ? new Set(filter.statuses) : null;
  return liveStream(deps, held, {
    async *opening() {
      if (snapshot) {
        for (const entry of snapshot.requests) yield { kind: 'snapshot', ...entry, position: snapshot.position };
        return;
      }
      for (;;) {
        const events = await feedEventsAfter(deps.db, viewer, filter, position, REPLAY_BATCH);
        for (const event of events) yield { kind: 'event', event };
        if (events.length < REPLAY_BATCH) return;
      }
    },
    // No missedBefore: the hub delivers every position in order; between two
    // of this feed's events lie other requests' events, not gaps.
    isNew: (event) => event.position > position,
    sent: (event) => {
      position = event.position;
    },
    keep: (event) =>
      canSeeRequest(viewer, event) &&
      (!statuses || statuses.has(event.newStatus)) &&
      (!filter.studentId || event.studentId === filter.studentId) &&
      (!filter.organizationId || event.organizationId === filter.organizationId),
    finished: () => false,
  });
}
