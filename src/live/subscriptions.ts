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
  checkFeedCursor,
  parseFeedFilter,
  requestEventsAfter,
  requestSnapshot,
  STALL_EVENT,
  type FeedFilter,
} from '../services/live-reads.js';
import type { LiveEvent } from '../services/live-events.js';
import { STREAM_ENDING_STATUSES } from '../services/pipeline.js';
import type { ContentRequest } from '../services/requests.js';
import { assertNever } from '../services/assert-never.js';
import { canSeeRequest, feedSource, type Viewer } from '../services/access.js';
import type { EventHub, Topic } from './hub.js';

export type Update =
  | { kind: 'snapshot'; request: ContentRequest; sequence: number; position: bigint }
  | { kind: 'event'; event: LiveEvent };

export type LiveDependencies = {
  db: Queryable;
  hub: EventHub;
  /** Aborted when the server stops: every stream then completes. */
  closing: AbortSignal;
  /** Open streams per user, capped (LIVE_MAX_SUBSCRIPTIONS_PER_USER). */
  streamsPerUser: StreamQuota;
  /** A client this many updates behind is cut off; it resumes from its last cursor (LIVE_MAX_UNREAD_UPDATES). */
  maxUnreadUpdates: number;
};

/** Who is subscribing, and until when their token lets them. */
export type Subscriber = {
  viewer: Viewer;
  expiresAt: Date | null;
  /**
   * Aborted when the client's HTTP connection goes. An SSE client that hangs up
   * before the transport first reads the stream gets no return() from it, so
   * this is what frees what the stream holds then.
   */
  hangUp?: AbortSignal;
};

const FEED_SNAPSHOT_LIMIT = 100;
const REPLAY_BATCH = 1_000;
// setTimeout holds at most ~24.8 days.
const MAX_TIMER_MS = 2_147_483_647;

/** Counts each user's open streams in this process, refusing one past the cap. */
export class StreamQuota {
  private readonly open = new Map<string, number>();
  constructor(readonly maxPerUser: number) {}

  /** Takes a slot for `userId`; the returned function gives it back (once). */
  acquire(userId: string): () => void {
    const count = this.open.get(userId) ?? 0;
    if (count >= this.maxPerUser) {
      throw new ServiceError(
        'RATE_LIMITED',
        `you have ${this.maxPerUser} live subscriptions open, the most allowed: end one before opening another`,
        { limit: this.maxPerUser },
      );
    }
    this.open.set(userId, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(userId) ?? 1) - 1;
      if (left > 0) this.open.set(userId, left);
      else this.open.delete(userId);
    };
  }
}

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

const tokenExpired = () => new ServiceError('UNAUTHENTICATED', 'your token has expired: subscribe again with a new one');

/**
 * The stream a transport reads. `releaseResources` (the hub subscription, the
 * user's slot) runs exactly once, however the stream ends: finished, cut off,
 * or dropped by the transport with return(), even before its first read.
 */
function liveStream(
  deps: LiveDependencies,
  subscriber: Subscriber,
  held: ReturnType<typeof holdEvents>,
  releaseSlot: () => void,
  setup: StreamSetup,
): AsyncIterableIterator<Update> {
  let expiryTimer: NodeJS.Timeout | undefined;
  let released = false;
  const releaseResources = () => {
    if (released) return;
    released = true;
    clearTimeout(expiryTimer);
    held.unsubscribe();
    releaseSlot();
  };
  const { expiresAt } = subscriber;
  const repeater = new Repeater<Update>(async (push, stop) => {
    // How far behind the client is: updates pushed and not yet taken, and live
    // events still queued behind the opening (a client that stops reading
    // during a long snapshot holds them there).
    let unread = 0;
    let queued = 0;
    let cut = false;
    const cutOff = () => {
      if (!cut) deps.hub.stats.cutOffs++;
      cut = true;
      stop(new ServiceError('CONFLICT', `more than ${deps.maxUnreadUpdates} updates unread: resubscribe from your last cursor`));
    };
    // Returns the push: the opening awaits it, so a long replay goes at the
    // client's pace; live updates count as unread until the client takes them.
    const emit = (update: Update): Promise<unknown> | undefined => {
      // Checked here too, not only by the timer: nothing goes out after expiry, even if the timer runs late.
      if (expiresAt && Date.now() >= expiresAt.getTime()) {
        stop(tokenExpired());
        return undefined;
      }
      if (unread + queued >= deps.maxUnreadUpdates) {
        cutOff();
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

    if (expiresAt) {
      expiryTimer = setTimeout(() => stop(tokenExpired()), Math.min(Math.max(expiresAt.getTime() - Date.now(), 0), MAX_TIMER_MS));
    }
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
    held.release((event) => {
      if (unread + queued >= deps.maxUnreadUpdates) return cutOff();
      queued++;
      enqueue(async () => {
        queued--;
        if (!setup.isNew(event)) return;
        const missed = setup.missedBefore?.(event);
        // A gap is replayed at the client's pace, like the opening; a live event counts as unread.
        if (missed) for await (const earlier of missed) await deliver(earlier);
        void deliver(event);
      });
    });

    const onClosing = () => stop();
    if (deps.closing.aborted) stop();
    deps.closing.addEventListener('abort', onClosing);
    await stop;
    deps.closing.removeEventListener('abort', onClosing);
    releaseResources();
  });
  const stream = endsQuietly(repeater, releaseResources);
  const { hangUp } = subscriber;
  if (hangUp) {
    const onHangUp = () => void stream.return?.();
    if (hangUp.aborted) onHangUp();
    else hangUp.addEventListener('abort', onHangUp, { once: true });
  }
  return stream;
}

const DONE: IteratorResult<Update> = { done: true, value: undefined };

/**
 * The transports end a stream they no longer read with return(), without
 * catching it (graphql-ws on a closing socket), and may do so before the first
 * read, when the Repeater has not even started. A Repeater stopped with an
 * error rejects its return(): that would be an unhandled rejection. So
 * return() and throw() here always settle quietly, and free what the stream holds.
 */
function endsQuietly(repeater: Repeater<Update>, releaseResources: () => void): AsyncIterableIterator<Update> {
  const finish = () => {
    releaseResources();
    return repeater.return().then(
      () => DONE,
      () => DONE,
    );
  };
  return {
    next: () =>
      repeater.next().then(
        (result) => {
          if (result.done) releaseResources();
          return result;
        },
        (error: unknown) => {
          releaseResources();
          throw error;
        },
      ),
    return: finish,
    throw: finish,
    [Symbol.asyncIterator]() {
      return this;
    },
  };
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

/** One request: snapshot or replay after `afterSequence`, then live. NOT_FOUND when out of reach (BAD_USER_INPUT when resuming). */
export async function requestProgressStream(
  deps: LiveDependencies,
  subscriber: Subscriber,
  requestId: string,
  afterSequence: number | null,
): Promise<AsyncIterable<Update>> {
  const { viewer } = subscriber;
  // Notifications carry PostgreSQL's lower-case form of the UUID.
  const id = requestId.toLowerCase();
  const releaseSlot = deps.streamsPerUser.acquire(viewer.userId);
  const held = holdEvents(deps.hub, `request:${id}`);
  let snapshot: Awaited<ReturnType<typeof requestSnapshot>>;
  try {
    snapshot = await requestSnapshot(deps.db, viewer, id, { resuming: afterSequence !== null }); // also the access check
    if (afterSequence !== null && (!Number.isSafeInteger(afterSequence) || afterSequence < 0 || afterSequence > snapshot.sequence)) {
      // A sequence from the future would silently hold back every event up to it.
      throw badInput('afterSequence', `must be a sequence this request has reached (now ${snapshot.sequence})`);
    }
  } catch (error) {
    held.unsubscribe();
    releaseSlot();
    throw error;
  }
  const resuming = afterSequence !== null;
  let lastSequence = afterSequence ?? snapshot.sequence;
  return liveStream(deps, subscriber, held, releaseSlot, {
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
      STREAM_ENDING_STATUSES.has(update.kind === 'snapshot' ? update.request.status : update.event.newStatus),
    // A finished request changes no more: the replay is all there is.
    endsAfterOpening: resuming && STREAM_ENDING_STATUSES.has(snapshot.request.status),
  });
}

/** Which hub topic serves a viewer's feed (access.ts decides which requests it covers). */
function feedTopic(viewer: Viewer, filter: FeedFilter): Topic {
  const source = feedSource(viewer, filter);
  switch (source.kind) {
    case 'all':
      return 'all';
    case 'organization':
      return `organization:${source.organizationId}`;
    case 'student':
      return `student:${source.studentId}`;
    default:
      return assertNever(source);
  }
}

function parseCursor(after: string): bigint {
  if (!/^\d{1,19}$/.test(after)) throw badInput('after', 'is not a cursor this API issued');
  return BigInt(after);
}

/** Many requests: snapshot (or replay after the cursor `after`), then live, in commit order. */
export async function requestUpdatesStream(
  deps: LiveDependencies,
  subscriber: Subscriber,
  given: FeedFilter,
  after: string | null,
): Promise<AsyncIterable<Update>> {
  const { viewer } = subscriber;
  const filter = parseFeedFilter(given);
  let lastPosition = after === null ? null : parseCursor(after);
  const topic = feedTopic(viewer, filter);
  const releaseSlot = deps.streamsPerUser.acquire(viewer.userId);
  const held = holdEvents(deps.hub, topic);
  let snapshot: Awaited<ReturnType<typeof feedSnapshot>> | null = null;
  try {
    if (lastPosition === null) {
      snapshot = await feedSnapshot(deps.db, viewer, filter, FEED_SNAPSHOT_LIMIT);
      lastPosition = snapshot.position;
    } else {
      await checkFeedCursor(deps.db, lastPosition);
    }
  } catch (error) {
    held.unsubscribe();
    releaseSlot();
    throw error;
  }
  let position: bigint = lastPosition;
  const statuses = filter.statuses?.length ? new Set(filter.statuses) : null;
  return liveStream(deps, subscriber, held, releaseSlot, {
    async *opening() {
      if (snapshot) {
        for (const entry of snapshot.requests) yield { kind: 'snapshot', ...entry, position: snapshot.position };
        return;
      }
      const resumedFrom = position;
      for (;;) {
        const events = await feedEventsAfter(deps.db, viewer, filter, position, REPLAY_BATCH);
        for (const event of events) yield { kind: 'event', event };
        if (events.length < REPLAY_BATCH) break;
      }
      // A purge that committed during the replay may have removed events it was about to read.
      await checkFeedCursor(deps.db, resumedFrom, 'purged');
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
      (!filter.stalled || event.eventType === STALL_EVENT) &&
      (!filter.studentId || event.studentId === filter.studentId) &&
      (!filter.organizationId || event.organizationId === filter.organizationId),
    finished: () => false,
  });
}
