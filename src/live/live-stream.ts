/**
 * The stream a transport reads, and what ends streams in groups. Thousands
 * are open at once, mostly idle, so each stream is one object with its state
 * in fields (no closure per step, no Repeater): its hub handler is its only
 * closure, and the server's closing and a token's expiry are one listener and
 * one timer for every stream they end, not one each.
 */
import type { Queryable } from '../db/client.js';
import { ServiceError } from '../services/errors.js';
import type { LiveEvent } from '../services/live-events.js';
import type { ContentRequest } from '../services/requests.js';
import type { Viewer } from '../services/access.js';
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

/** Counts each user's open streams in this process, refusing one past the cap. */
export class StreamQuota {
  private readonly open = new Map<string, number>();
  constructor(readonly maxPerUser: number) {}

  /** Takes a slot for `userId`; give it back with release() (once). */
  acquire(userId: string): void {
    const count = this.open.get(userId) ?? 0;
    if (count >= this.maxPerUser) {
      throw new ServiceError(
        'RATE_LIMITED',
        `you have ${this.maxPerUser} live subscriptions open, the most allowed: end one before opening another`,
        { limit: this.maxPerUser },
      );
    }
    this.open.set(userId, count + 1);
  }

  release(userId: string): void {
    const left = (this.open.get(userId) ?? 1) - 1;
    if (left > 0) this.open.set(userId, left);
    else this.open.delete(userId);
  }
}

// setTimeout holds at most ~24.8 days.
const MAX_TIMER_MS = 2_147_483_647;
const DONE: IteratorResult<Update> = { done: true, value: undefined };

const tokenExpired = () => new ServiceError('UNAUTHENTICATED', 'your token has expired: subscribe again with a new one');

/** The streams one server's closing ends, and those each token expiry ends (one timer per expiry time). */
class Endings {
  readonly onClosing = new Set<LiveStream>();
  private readonly byExpiry = new Map<number, { streams: Set<LiveStream>; timer: NodeJS.Timeout }>();

  constructor(closing: AbortSignal) {
    closing.addEventListener('abort', () => {
      for (const stream of this.onClosing) stream.stop();
    }, { once: true });
  }

  atExpiry(at: number, stream: LiveStream): void {
    let group = this.byExpiry.get(at);
    if (!group) this.byExpiry.set(at, (group = { streams: new Set(), timer: this.timerFor(at) }));
    group.streams.add(stream);
  }

  forget(at: number, stream: LiveStream): void {
    const group = this.byExpiry.get(at);
    if (!group?.streams.delete(stream) || group.streams.size) return;
    clearTimeout(group.timer);
    this.byExpiry.delete(at);
  }

  private timerFor(at: number): NodeJS.Timeout {
    return setTimeout(() => {
      const group = this.byExpiry.get(at);
      if (!group) return;
      // A token more than ~24.8 days away: wait again.
      if (Date.now() < at) return void (group.timer = this.timerFor(at));
      this.byExpiry.delete(at);
      for (const stream of group.streams) stream.stop(tokenExpired());
    }, Math.min(Math.max(at - Date.now(), 0), MAX_TIMER_MS));
  }
}

const endingsOf = new WeakMap<AbortSignal, Endings>();

function endings(closing: AbortSignal): Endings {
  let found = endingsOf.get(closing);
  if (!found) endingsOf.set(closing, (found = new Endings(closing)));
  return found;
}

type Reader = { resolve(result: IteratorResult<Update>): void; reject(error: unknown): void };

/**
 * Sends a live update to the client itself, outside the reader's pipeline,
 * calling `written` once it is written (or the connection failed); false when
 * it does not take this one (the reader gets it then).
 */
export type DirectSender = { sendDirect(update: Update, written: () => void): boolean };

/**
 * Subscribes to its hub topic at once, so nothing between that and start()
 * (when the starting point is known) is lost: a new stream holds those
 * events, a resuming one leaves them to its replay, which reads after
 * start(). Then it sends the opening and every later event, one step at a
 * time, in arrival order.
 * `release` (the hub subscription, the user's slot, the shared timers) runs
 * exactly once, however the stream ends: finished, cut off, expired, the
 * server closing, or dropped by the transport with return(), even before its
 * first read. return() and throw() always settle quietly: the transports end
 * a stream without catching them (graphql-ws on a closing socket).
 */
export abstract class LiveStream implements AsyncIterableIterator<Update> {
  /** Updates sent and not yet taken by the reader; like `readers` and `held`, dropped when empty (an idle stream holds no array). */
  private unread: Update[] | undefined;
  private readers: Reader[] | undefined;
  /** Live events from the hub before start(); after it, they queue behind the steps (`queued` of them). */
  private held: LiveEvent[] | undefined;
  private queued = 0;
  private steps: Promise<void> | undefined;
  /** Steps on `steps` not yet settled (the opening, queued events, a gap's replay): at 0 a live event is handled at once. */
  private pendingSteps = 0;
  /** The opening (or a gap's replay) waits here until the reader has taken what it sent. */
  private drained: (() => void) | undefined;
  private open = true;
  private released = false;
  private failure: unknown;
  private readonly expiresAt: number | null;
  private direct: DirectSender | undefined;
  /** Updates sent directly and not yet written to the client's connection: unread as well. */
  private unwritten = 0;
  /** Made at the first direct send: an idle stream has none. */
  private onWritten: (() => void) | undefined;
  // Assigned, not a class field: a field's arrow function is named at run time, which costs it a property table.
  private readonly onEvent: (event: LiveEvent) => void;

  constructor(
    protected readonly deps: LiveDependencies,
    protected readonly viewer: Viewer,
    private readonly topic: Topic,
    expiresAt: Date | null,
  ) {
    this.expiresAt = expiresAt?.getTime() ?? null;
    this.onEvent = (event) => this.arrive(event);
    deps.streamsPerUser.acquire(viewer.userId);
    deps.hub.subscribe(topic, this.onEvent);
  }

  /** The updates that open the stream (a snapshot or a replay), in order. */
  protected abstract opening(): AsyncIterable<Update>;
  /** False for what is sent already (a live event at or below it is a duplicate). */
  protected abstract isNew(event: LiveEvent): boolean;
  /** True for what the opening will send anyway (it reads the table through this event): its live copy is dropped. */
  protected abstract covers(event: LiveEvent): boolean;
  /** What was missed before `event` (a gap), in order; undefined when nothing was (the usual case, kept off the hot path's awaits). */
  protected missedBefore(_event: LiveEvent): AsyncIterable<LiveEvent> | undefined {
    return undefined;
  }
  /** Records the event as sent. */
  protected abstract sent(event: LiveEvent): void;
  protected abstract keep(event: LiveEvent): boolean;
  /** True once the stream has nothing more to say (a finished request). */
  protected abstract finished(update: Update): boolean;
  /** The opening already says everything (resuming on a request that had finished). */
  protected endsAfterOpening = false;
  /**
   * The opening replays from the table (a client resuming from its cursor):
   * it reads after start(), so it includes whatever arrives before, and
   * nothing need be held until then.
   */
  protected resuming = false;
  /**
   * More events arrived before start() than the limit holds: they were let
   * go, and the opening reads what came after its snapshot from the table.
   */
  protected missedWhileStarting = false;

  /** Begins the stream once its starting point is read; `hangUp` ends it with the client's connection. */
  start(hangUp?: AbortSignal): this {
    const { closing } = this.deps;
    if (closing.aborted) this.stop();
    if (!this.open) return this;
    const ends = endings(closing);
    ends.onClosing.add(this);
    if (this.expiresAt !== null) ends.atExpiry(this.expiresAt, this);
    this.pendingSteps++;
    this.steps = this.settle(this.runOpening());
    const held = this.held;
    this.held = undefined;
    if (held) for (const event of held) this.arrive(event);
    if (hangUp) {
      if (hangUp.aborted) void this.return();
      else hangUp.addEventListener('abort', () => void this.return(), { once: true });
    }
    return this;
  }

  /** Ends the stream: what is sent already is still read, then the error (if any) or the end. */
  stop(error?: unknown): void {
    if (!this.open) return;
    this.open = false;
    this.failure = error;
    this.release();
    this.drained?.();
    if (!this.unread) this.wakeReaders();
  }

  next(): Promise<IteratorResult<Update>> {
    const update = this.unread?.shift();
    if (update) {
      if (!this.unread!.length) {
        this.unread = undefined;
        this.drained?.();
      }
      return Promise.resolve({ value: update, done: false });
    }
    if (this.open) {
      return new Promise((resolve, reject) => {
        // Sized to fit (a push onto [] reserves 17 slots): an idle stream's one reader.
        if (this.readers) this.readers.push({ resolve, reject });
        else this.readers = [{ resolve, reject }];
      });
    }
    const failure = this.failure;
    this.failure = undefined;
    return failure === undefined ? Promise.resolve(DONE) : Promise.reject(failure);
  }

  return(): Promise<IteratorResult<Update>> {
    this.open = false;
    this.failure = undefined;
    this.unread = undefined;
    this.release();
    this.drained?.();
    this.wakeReaders();
    return Promise.resolve(DONE);
  }

  throw(): Promise<IteratorResult<Update>> {
    return this.return();
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /**
   * Live events go to `send` instead of the reader whenever the reader is
   * waiting: everything it was given is then sent already, so the order holds.
   * Openings and replays are paced by the reader and always go to it.
   */
  sendDirectly(sender: DirectSender): void {
    this.direct = sender;
  }

  /** Frees what the stream holds, once. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.deps.hub.unsubscribe(this.topic, this.onEvent);
    this.deps.streamsPerUser.release(this.viewer.userId);
    const ends = endingsOf.get(this.deps.closing);
    ends?.onClosing.delete(this);
    if (this.expiresAt !== null) ends?.forget(this.expiresAt, this);
  }

  private wakeReaders(): void {
    const readers = this.readers;
    this.readers = undefined;
    if (!readers) return;
    for (const reader of readers) {
      const failure = this.failure;
      this.failure = undefined;
      if (failure === undefined) reader.resolve(DONE);
      else reader.reject(failure);
    }
  }

  private async runOpening(): Promise<void> {
    for await (const update of this.opening()) {
      if (!this.open) return;
      await (update.kind === 'event' ? this.deliver(update.event, true) : this.emit(update, true));
    }
    if (this.endsAfterOpening) this.stop();
  }

  /**
   * From the hub: before start(), dropped by a resuming stream and held by
   * another (up to the limit: nothing says yet which are new; past it, all
   * let go for the opening to read from the table); after it,
   * dropped when the opening covers it or it was sent, else queued behind the
   * steps — and a reader with too many new updates unread is cut off. A burst
   * the opening replays (a client resuming while the hub passes on the same
   * events) thus counts for nothing.
   */
  private arrive(event: LiveEvent): void {
    if (!this.open) return;
    if (!this.steps) {
      if (this.resuming || this.missedWhileStarting) return;
      if ((this.held?.length ?? 0) < this.deps.maxUnreadUpdates) return void (this.held ??= []).push(event);
      this.held = undefined;
      this.missedWhileStarting = true;
      return;
    }
    if (!this.isNew(event) || this.covers(event)) return;
    if (this.unreadCount() + this.queued >= this.deps.maxUnreadUpdates) return this.cutOff();
    if (this.pendingSteps === 0) {
      // Nothing before it to wait for: handled now, in the hub's loop, with no promise or closure
      // per stream (one event reaches thousands of them; each promise step was most of their cost).
      try {
        const replay = this.handle(event);
        if (replay) {
          this.pendingSteps++;
          this.steps = this.settle(replay);
        }
      } catch (error) {
        this.stop(error);
      }
      return;
    }
    this.queued++;
    this.enqueue(event);
  }

  private enqueue(event: LiveEvent): void {
    this.pendingSteps++;
    this.steps = this.settle(
      this.steps!.then(() => {
        this.queued--;
        return this.handle(event);
      }),
    );
  }

  /** The stream's steps after `step`: a step that fails ends the stream. */
  private settle(step: Promise<void>): Promise<void> {
    return step.then(
      () => void this.pendingSteps--,
      (error: unknown) => {
        this.pendingSteps--;
        this.stop(error);
      },
    );
  }

  /** Sends a live event; when events before it were missed, the returned promise replays them, then sends it. */
  private handle(event: LiveEvent): Promise<void> | undefined {
    if (!this.open || !this.isNew(event)) return undefined;
    const missed = this.missedBefore(event);
    if (missed) return this.replayThenDeliver(missed, event);
    void this.deliver(event, false);
    return undefined;
  }

  // A gap is replayed at the client's pace, like the opening; a live event counts as unread.
  private async replayThenDeliver(missed: AsyncIterable<LiveEvent>, event: LiveEvent): Promise<void> {
    for await (const earlier of missed) await this.deliver(earlier, true);
    void this.deliver(event, false);
  }

  private deliver(event: LiveEvent, paced: boolean): Promise<void> | undefined {
    if (!this.isNew(event)) return undefined;
    this.sent(event);
    return this.keep(event) ? this.emit({ kind: 'event', event }, paced) : undefined;
  }

  /** Sends one update; paced, the returned promise settles once the reader has taken it (or the stream ended). */
  private emit(update: Update, paced: boolean): Promise<void> | undefined {
    if (!this.open) return undefined;
    // Checked here too, not only by the timer: nothing goes out after expiry, even if the timer runs late.
    if (this.expiresAt !== null && Date.now() >= this.expiresAt) return void this.stop(tokenExpired());
    if (this.unreadCount() + this.queued >= this.deps.maxUnreadUpdates) return void this.cutOff();
    if (!paced && this.readers && this.sentDirectly(update)) {
      if (this.finished(update)) this.stop();
      return undefined;
    }
    const reader = this.readers?.shift();
    if (reader) {
      if (!this.readers!.length) this.readers = undefined;
      reader.resolve({ value: update, done: false });
    } else (this.unread ??= []).push(update);
    if (this.finished(update)) this.stop();
    if (!paced || !this.unread || !this.open) return undefined;
    return new Promise((resolve) => {
      this.drained = () => {
        this.drained = undefined;
        resolve();
      };
    });
  }

  private sentDirectly(update: Update): boolean {
    // Counted first: `written` may be called at once.
    this.unwritten++;
    if (this.direct?.sendDirect(update, (this.onWritten ??= () => void this.unwritten--))) return true;
    this.unwritten--;
    return false;
  }

  private unreadCount(): number {
    return (this.unread?.length ?? 0) + this.unwritten;
  }

  private cutOff(): void {
    if (!this.open) return;
    this.deps.hub.stats.cutOffs++;
    this.stop(new ServiceError('CONFLICT', `more than ${this.deps.maxUnreadUpdates} updates unread: resubscribe from your last cursor`));
  }
}
