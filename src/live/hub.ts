/**
 * The in-process hub: one notification listener per server process, turned
 * into one ordered, gap-free stream of request events, fanned out by topic
 * (one request, one student, one organization, everything).
 *
 * Order and completeness come from the feed position: the database numbers
 * every event at commit, in commit order (drizzle/0005), so once position P
 * is visible every smaller position is too. The hub delivers positions in
 * order; a jump (a notification lost while the listener was away, or an
 * aborted commit's unused number) is filled from request_events before going
 * on. After every reconnection, and after a notification it cannot read, the
 * hub catches up the same way: the table has whatever the notification said.
 */
import type { NotificationListener } from '../db/notifications.js';
import type { Logger } from '../logger.js';
import { parseLiveEventNotification, REQUEST_EVENTS_CHANNEL, type LiveEvent } from '../services/live-events.js';

export type Topic = `request:${string}` | `student:${string}` | `organization:${string}` | 'all';

export type LiveEventHandler = (event: LiveEvent) => void;

export type HubSource = {
  listener: NotificationListener;
  /** Events committed after `position`, in position order, at most `limit` of them. */
  eventsAfter(position: bigint, limit: number): Promise<LiveEvent[]>;
  /** The newest position committed so far (0 when there is none). */
  latestPosition(): Promise<bigint>;
};

const CATCH_UP_BATCH = 1_000;

export function topicsOf(event: Pick<LiveEvent, 'requestId' | 'studentId' | 'organizationId'>): Topic[] {
  const topics: Topic[] = ['all', `request:${event.requestId}`, `student:${event.studentId}`];
  if (event.organizationId) topics.push(`organization:${event.organizationId}`);
  return topics;
}

export class EventHub {
  // A topic's one handler is kept as is, a Set only from the second: most
  // topics (one request each) have one subscriber, and a Set each costs more than the stream.
  private readonly subscribers = new Map<Topic, LiveEventHandler | Set<LiveEventHandler>>();
  /** See every event like a subscriber of 'all', without being counted as a live subscription (metrics). */
  private readonly observers = new Set<LiveEventHandler>();
  private lastPosition = 0n;
  // Notifications and catch-ups are handled one at a time, in arrival order.
  private work: Promise<void> = Promise.resolve();
  private unsubscribeReconnect: (() => void) | undefined;
  private closed = false;
  /**
   * Counters for /metrics: events delivered, of which read back from the
   * table, listener reconnections, notifications that did not parse, and
   * streams cut off for reading too slowly.
   */
  readonly stats = { delivered: 0, recovered: 0, reconnects: 0, unreadableNotifications: 0, cutOffs: 0 };

  private constructor(
    private readonly source: HubSource,
    private readonly logger: Logger,
  ) {}

  static async start(source: HubSource, logger: Logger): Promise<EventHub> {
    const hub = new EventHub(source, logger.child({ component: 'event-hub' }));
    // A notification that arrives before the starting point is known waits
    // for it: handled at lastPosition 0, it would replay the whole history.
    let startingPointKnown!: () => void;
    hub.work = new Promise<void>((resolve) => (startingPointKnown = resolve));
    try {
      await source.listener.listen(REQUEST_EVENTS_CHANNEL, (payload) => hub.onNotification(payload));
      // Listening first, then the starting point: nothing committed in between is missed.
      hub.lastPosition = await source.latestPosition();
    } catch (error) {
      hub.closed = true;
      throw error;
    } finally {
      startingPointKnown();
    }
    hub.unsubscribeReconnect = source.listener.onReconnect(() => {
      hub.stats.reconnects++;
      hub.catchUpSoon();
    });
    return hub;
  }

  /** The position of the newest event delivered (for tests and diagnostics). */
  get position(): bigint {
    return this.lastPosition;
  }

  subscribe(topic: Topic, handler: LiveEventHandler): () => void {
    const handlers = this.subscribers.get(topic);
    if (!handlers) this.subscribers.set(topic, handler);
    else if (typeof handlers !== 'function') handlers.add(handler);
    else if (handlers !== handler) this.subscribers.set(topic, new Set([handlers, handler]));
    return () => this.unsubscribe(topic, handler);
  }

  unsubscribe(topic: Topic, handler: LiveEventHandler): void {
    const handlers = this.subscribers.get(topic);
    if (handlers === handler || (typeof handlers === 'object' && handlers.delete(handler) && handlers.size === 0)) {
      this.subscribers.delete(topic);
    }
  }

  /** Every event, in order, for the process's own bookkeeping (not a client's subscription). */
  observe(handler: LiveEventHandler): () => void {
    this.observers.add(handler);
    return () => this.observers.delete(handler);
  }

  /** Open subscriptions, by topic count (for metrics and tests). */
  get subscriberCount(): number {
    let count = 0;
    for (const handlers of this.subscribers.values()) count += typeof handlers === 'function' ? 1 : handlers.size;
    return count;
  }

  /** Open subscriptions on one topic. */
  subscriberCountOf(topic: Topic): number {
    const handlers = this.subscribers.get(topic);
    return handlers ? (typeof handlers === 'function' ? 1 : handlers.size) : 0;
  }

  /** Waits until everything received so far has been delivered. */
  settled(): Promise<void> {
    return this.work;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribeReconnect?.();
    await this.work;
    this.subscribers.clear();
    this.observers.clear();
  }

  private onNotification(payload: string): void {
    let event: LiveEvent;
    try {
      event = parseLiveEventNotification(payload);
    } catch (error) {
      // Whatever event it announced (if any) is in the table by now.
      this.stats.unreadableNotifications++;
      this.logger.error({ err: error, payload: payload.slice(0, 200) }, 'unreadable notification: catching up from the table');
      this.catchUpSoon();
      return;
    }
    this.enqueue(async () => {
      if (event.position <= this.lastPosition) return; // delivered already, by a catch-up
      if (event.position > this.lastPosition + 1n) await this.catchUp(event.position - 1n);
      this.deliver(event);
    });
  }

  // A burst of reconnections or unreadable notifications needs one read of the table, not one each.
  private catchUpQueued = false;
  private catchUpSoon(): void {
    if (this.catchUpQueued) return;
    this.catchUpQueued = true;
    this.enqueue(() => {
      this.catchUpQueued = false;
      return this.catchUp();
    });
  }

  private enqueue(task: () => Promise<void>): void {
    this.work = this.work.then(task).catch((error: unknown) => {
      this.logger.error({ err: error }, 'event hub could not catch up; it will try again on the next event');
    });
  }

  /** Delivers what was committed after lastPosition (up to `until`), from the table. */
  private async catchUp(until?: bigint): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const events = await this.source.eventsAfter(this.lastPosition, CATCH_UP_BATCH);
      for (const event of events) {
        if (until !== undefined && event.position > until) return;
        this.stats.recovered++;
        this.deliver(event);
      }
      if (events.length < CATCH_UP_BATCH) {
        // Whatever is still missing up to `until` was never committed (an aborted commit's number).
        if (until !== undefined && until > this.lastPosition) this.lastPosition = until;
        return;
      }
    }
  }

  private deliver(event: LiveEvent): void {
    this.stats.delivered++;
    this.lastPosition = event.position;
    for (const observer of this.observers) this.call(observer, event, 'observer');
    for (const topic of topicsOf(event)) {
      const handlers = this.subscribers.get(topic);
      if (typeof handlers === 'function') this.call(handlers, event, topic);
      else if (handlers) for (const handler of handlers) this.call(handler, event, topic);
    }
  }

  /** One handler's turn: a handler that throws is logged, never stops the others. */
  private call(handler: LiveEventHandler, event: LiveEvent, topic: Topic | 'observer'): void {
    try {
      handler(event);
    } catch (error) {
      this.logger.error({ err: error, topic }, 'subscriber failed on an event');
    }
  }

  /**
   * Resolves once every event committed before the call has been dispatched
   * to the subscribers, so a caller can check that nothing more arrived
   * without guessing how long to wait. A notification may still be on its way
   * when the hub's queue is empty, hence the short polls.
   */
  async caughtUp(timeoutMs = 10_000): Promise<void> {
    const committed = await this.source.latestPosition();
    const deadline = Date.now() + timeoutMs;
    while (this.lastPosition < committed && !this.closed) {
      if (Date.now() > deadline) throw new Error(`the hub did not reach position ${committed} (it is at ${this.lastPosition})`);
      await this.work;
      if (this.lastPosition < committed) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
