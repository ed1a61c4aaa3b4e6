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
 * drops what it has already sent, or what its opening reads from the table,
 * by sequence or position, so the seam between replayed and live events has
 * neither a gap nor a duplicate.
 */
import type { Queryable } from '../db/client.js';
import { badInput } from '../services/errors.js';
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
import { assertNever } from '../services/assert-never.js';
import { canSeeRequest, feedSource, type Viewer } from '../services/access.js';
import type { Topic } from './hub.js';
import { LiveStream, type LiveDependencies, type Subscriber, type Update } from './live-stream.js';

export { StreamQuota, type LiveDependencies, type Subscriber, type Update } from './live-stream.js';

const FEED_SNAPSHOT_LIMIT = 100;
const REPLAY_BATCH = 1_000;

/** One request's events after `afterSequence` (up to `untilSequence`), read a batch at a time. */
async function* replayRequest(db: Queryable, requestId: string, afterSequence: number, untilSequence?: number) {
  for (let after = afterSequence; ; ) {
    const events = await requestEventsAfter(db, requestId, after, REPLAY_BATCH, untilSequence);
    yield* events;
    if (events.length < REPLAY_BATCH) return;
    after = events.at(-1)!.sequence;
  }
}

type RequestSnapshot = Awaited<ReturnType<typeof requestSnapshot>>;

const historyRemoved = () => badInput('afterSequence', 'no history to resume: retention removed the request after it finished');

/** One request's stream: its snapshot (or replay), then its events in sequence order, gaps filled from the table. */
class RequestProgress extends LiveStream {
  /** Until the opening has sent it. */
  private snapshot: RequestSnapshot | undefined;
  private lastSequence = 0;
  /** The newest sequence when the stream began: the opening sends everything up to it. */
  private coveredThrough = 0;

  constructor(
    deps: LiveDependencies,
    subscriber: Subscriber,
    private readonly id: string,
    afterSequence: number | null,
  ) {
    super(deps, subscriber.viewer, `request:${id}`, subscriber.expiresAt);
    this.resuming = afterSequence !== null;
  }

  /** From here on, events after `afterSequence` (null: after the snapshot's). */
  begin(snapshot: RequestSnapshot, afterSequence: number | null, hangUp?: AbortSignal): this {
    this.lastSequence = afterSequence ?? snapshot.sequence;
    this.coveredThrough = snapshot.sequence;
    if (this.resuming) this.endsAfterOpening = STREAM_ENDING_STATUSES.has(snapshot.request.status);
    else this.snapshot = snapshot;
    return this.start(hangUp);
  }

  protected async *opening(): AsyncIterable<Update> {
    const snapshot = this.snapshot;
    this.snapshot = undefined;
    if (snapshot) {
      yield { kind: 'snapshot', ...snapshot };
      if (!this.missedWhileStarting) return;
    }
    for await (const event of replayRequest(this.deps.db, this.id, this.lastSequence)) yield { kind: 'event', event };
    // Short of the snapshot's sequence: retention removed the (finished) request between two batches, and with it the rest.
    if (this.lastSequence < this.coveredThrough) throw historyRemoved();
  }

  protected isNew(event: LiveEvent): boolean {
    return event.sequence > this.lastSequence;
  }

  protected covers(event: LiveEvent): boolean {
    return event.sequence <= this.coveredThrough;
  }

  protected override missedBefore(event: LiveEvent): AsyncIterable<LiveEvent> | undefined {
    const last = this.lastSequence;
    return event.sequence > last + 1 ? replayRequest(this.deps.db, this.id, last, event.sequence - 1) : undefined;
  }

  protected sent(event: LiveEvent): void {
    this.lastSequence = event.sequence;
  }

  protected keep(event: LiveEvent): boolean {
    return canSeeRequest(this.viewer, event);
  }

  protected finished(update: Update): boolean {
    return STREAM_ENDING_STATUSES.has(update.kind === 'snapshot' ? update.request.status : update.event.newStatus);
  }
}

/** One request: snapshot or replay after `afterSequence`, then live. NOT_FOUND when out of reach (BAD_USER_INPUT when resuming). */
export async function requestProgressStream(
  deps: LiveDependencies,
  subscriber: Subscriber,
  requestId: string,
  afterSequence: number | null,
): Promise<AsyncIterable<Update>> {
  // Notifications carry PostgreSQL's lower-case form of the UUID.
  const id = requestId.toLowerCase();
  // Subscribed before the starting point is read: nothing in between is lost (live-stream.ts says how).
  const stream = new RequestProgress(deps, subscriber, id, afterSequence);
  try {
    const snapshot = await requestSnapshot(deps.db, subscriber.viewer, id, { resuming: afterSequence !== null }); // also the access check
    if (afterSequence !== null && (!Number.isSafeInteger(afterSequence) || afterSequence < 0 || afterSequence > snapshot.sequence)) {
      // A sequence from the future would silently hold back every event up to it.
      throw badInput('afterSequence', `must be a sequence this request has reached (now ${snapshot.sequence})`);
    }
    return stream.begin(snapshot, afterSequence, subscriber.hangUp);
  } catch (error) {
    stream.release();
    throw error;
  }
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

type FeedSnapshot = Awaited<ReturnType<typeof feedSnapshot>>;

/**
 * A feed: its snapshot (or replay after a cursor), then its events in feed
 * position (commit) order. No missedBefore: the hub delivers every position
 * in order; between two of this feed's events lie other requests' events, not gaps.
 */
class RequestUpdates extends LiveStream {
  /** Until the opening has sent it. */
  private snapshot: FeedSnapshot | undefined;
  private position = 0n;
  /** The newest position when the stream began: the opening sends everything up to it that the feed keeps. */
  private coveredThrough = 0n;
  private readonly statuses: Set<string> | null;

  constructor(
    deps: LiveDependencies,
    subscriber: Subscriber,
    private readonly filter: FeedFilter,
    resuming: boolean,
  ) {
    super(deps, subscriber.viewer, feedTopic(subscriber.viewer, filter), subscriber.expiresAt);
    this.resuming = resuming;
    this.statuses = filter.statuses?.length ? new Set(filter.statuses) : null;
  }

  /** From here on, events after the snapshot's position, or, resuming, after `after` (the replay reads through `latest`). */
  begin(from: FeedSnapshot | { after: bigint; latest: bigint }, hangUp?: AbortSignal): this {
    if ('after' in from) {
      this.position = from.after;
      this.coveredThrough = from.latest;
    } else {
      this.snapshot = from;
      this.position = this.coveredThrough = from.position;
    }
    return this.start(hangUp);
  }

  protected async *opening(): AsyncIterable<Update> {
    const snapshot = this.snapshot;
    this.snapshot = undefined;
    if (snapshot) {
      for (const entry of snapshot.requests) yield { kind: 'snapshot', ...entry, position: snapshot.position };
      if (!this.missedWhileStarting) return;
    }
    const { db } = this.deps;
    const resumedFrom = this.position;
    for (;;) {
      const events = await feedEventsAfter(db, this.viewer, this.filter, this.position, REPLAY_BATCH);
      for (const event of events) yield { kind: 'event', event };
      if (events.length < REPLAY_BATCH) break;
    }
    // A purge that committed during the replay may have removed events it was about to read (a client's cursor: its own).
    if (this.resuming) await checkFeedCursor(db, resumedFrom, 'purged');
  }

  protected isNew(event: LiveEvent): boolean {
    return event.position > this.position;
  }

  // Positions are handed out in commit order (drizzle/0005): every one up to `latest` was visible to the replay.
  protected covers(event: LiveEvent): boolean {
    return event.position <= this.coveredThrough;
  }

  protected sent(event: LiveEvent): void {
    this.position = event.position;
  }

  protected keep(event: LiveEvent): boolean {
    const { filter } = this;
    return (
      canSeeRequest(this.viewer, event) &&
      (!this.statuses || this.statuses.has(event.newStatus)) &&
      (!filter.stalled || event.eventType === STALL_EVENT) &&
      (!filter.studentId || event.studentId === filter.studentId) &&
      (!filter.organizationId || event.organizationId === filter.organizationId)
    );
  }

  protected finished(): boolean {
    return false;
  }
}

/** Many requests: snapshot (or replay after the cursor `after`), then live, in commit order. */
export async function requestUpdatesStream(
  deps: LiveDependencies,
  subscriber: Subscriber,
  given: FeedFilter,
  after: string | null,
): Promise<AsyncIterable<Update>> {
  const filter = parseFeedFilter(given);
  const cursor = after === null ? null : parseCursor(after);
  // Subscribed before the starting point is read: nothing in between is lost (live-stream.ts says how).
  const stream = new RequestUpdates(deps, subscriber, filter, cursor !== null);
  try {
    if (cursor === null) return stream.begin(await feedSnapshot(deps.db, subscriber.viewer, filter, FEED_SNAPSHOT_LIMIT), subscriber.hangUp);
    const latest = await checkFeedCursor(deps.db, cursor);
    return stream.begin({ after: cursor, latest }, subscriber.hangUp);
  } catch (error) {
    stream.release();
    throw error;
  }
}
