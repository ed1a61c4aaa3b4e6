/**
 * A stream that opens while the hub is still passing on a burst of its
 * topic's events (one commit of many changes, say) receives most of that
 * burst twice: from its opening, which reads the table, and live. The live
 * copies of what the opening covers are not updates the client has left
 * unread, so they must not count towards LIVE_MAX_UNREAD_UPDATES: a client
 * that reads at its own pace gets everything, once, in order, and is not cut
 * off. A reader that stops reading is still cut off by what is new.
 *
 * The streams are opened on a hub whose notifications the test holds back
 * and then lets through all at once, as a listener hands over a burst read
 * from one socket chunk; the reader takes the first update and then pauses,
 * so the opening waits on it while the burst arrives. Events that arrive
 * before a stream's starting point is read are bounded too: a resuming
 * stream takes none (its replay reads them), a new one holds up to the limit
 * and reads the rest from the table after its snapshot (a database whose
 * answers arrive late lets them commit in that window).
 */
import { eq } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import type { NotificationHandler, NotificationListener } from '../../src/db/notifications.js';
import type { Queryable } from '../../src/db/client.js';
import * as tables from '../../src/db/tables.js';
import { contentRequests } from '../../src/db/tables.js';
import { EventHub } from '../../src/live/hub.js';
import { requestProgressStream, requestUpdatesStream, StreamQuota, type LiveDependencies, type Update } from '../../src/live/subscriptions.js';
import { silentLogger } from '../../src/logger.js';
import type { Viewer } from '../../src/services/access.js';
import { eventsAfterPosition, latestPosition } from '../../src/services/live-reads.js';
import { purgeFinishedRequests } from '../../src/services/retention.js';
import { committedFeedEvents, committedPosition, committedRequestEvents } from '../helpers/committed.js';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/database.js';
import { insertRequest } from '../helpers/factories.js';
import { ageRequests } from '../helpers/age.js';

const MAX_UNREAD = 20;
const BURST = 3 * MAX_UNREAD;

let testDatabase: TestDatabase;
let listener: NotificationListener;
let hub: EventHub;
let deps: LiveDependencies;
const closing = new AbortController();

/** Notifications held back while `holding`, then handed to the hub in one synchronous run. */
const gate = {
  holding: false,
  held: [] as string[],
  handler: undefined as NotificationHandler | undefined,
  release() {
    const held = gate.held;
    gate.held = [];
    gate.holding = false;
    for (const payload of held) gate.handler!(payload);
  },
};

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  const { database } = testDatabase;
  listener = await database.createNotificationListener(silentLogger);
  const gated: NotificationListener = {
    listen: (channel, handler) => {
      gate.handler = handler;
      return listener.listen(channel, (payload) => (gate.holding ? gate.held.push(payload) : handler(payload)));
    },
    onReconnect: (callback) => listener.onReconnect(callback),
    close: () => listener.close(),
  };
  hub = await EventHub.start(
    { listener: gated, eventsAfter: (position, limit) => eventsAfterPosition(database.db, position, limit), latestPosition: () => latestPosition(database.db) },
    silentLogger,
  );
  deps = { db: database.db, hub, closing: closing.signal, streamsPerUser: new StreamQuota(100), maxUnreadUpdates: MAX_UNREAD };
});

afterAll(async () => {
  closing.abort();
  await hub?.close();
  await listener?.close();
  await testDatabase?.close();
});

beforeEach(async () => {
  await hub.caughtUp();
  expect(gate.held).toEqual([]);
});

/** A request of its own student, the student as the viewer. */
async function studentRequest(): Promise<{ id: string; viewer: Viewer }> {
  const request = await insertRequest(testDatabase.database.db);
  return { id: request.id, viewer: { userId: request.studentId, role: 'student', organizationId: null } };
}

/** `count` progress changes of one request in one commit: one event each. */
async function commitBurst(id: string, count: number): Promise<void> {
  await testDatabase.database.db.transaction(async (tx) => {
    for (let change = 1; change <= count; change++) {
      await tx.update(contentRequests).set({ progressPercentage: change % 2 ? 10 : 20 }).where(eq(contentRequests.id, id));
    }
  });
}

/** Commits the burst with its notifications held; they reach the hub only at `gate.release()`. */
async function commitBurstHeld(id: string): Promise<void> {
  gate.holding = true;
  await commitBurst(id, BURST);
  await waitFor(() => gate.held.length >= BURST, `the burst's ${BURST} notifications`);
}

/** Reads updates until `done` says so; a stream error fails the read. */
async function readUntil(stream: AsyncIterator<Update>, done: (updates: Update[]) => boolean, first: Update[] = []): Promise<Update[]> {
  const updates = [...first];
  while (!done(updates)) {
    const next = await stream.next();
    if (next.done) break;
    updates.push(next.value);
  }
  return updates;
}

const sequences = (updates: Update[]) => updates.map((update) => (update.kind === 'event' ? update.event.sequence : `snapshot ${update.sequence}`));
/** Reads the stream to its end into `updates`; resolves with the error it ended with, if any. */
function readToEnd(stream: AsyncIterator<Update>, updates: Update[]): Promise<unknown> {
  return (async () => {
    for (;;) {
      const next = await stream.next();
      if (next.done) return undefined;
      updates.push(next.value);
    }
  })().catch((error: unknown) => error);
}

const positions = (updates: Update[]) => updates.map((update) => (update.kind === 'event' ? update.event.position : update.kind));

/**
 * Takes the stream's first update and pauses (a replay then waits on the reader), lets the
 * held burst through, then reads on until `count` updates in all (or the stream's end, without `count`).
 */
async function readThroughBurst(opened: AsyncIterable<Update>, count?: number): Promise<Update[]> {
  const stream = opened[Symbol.asyncIterator]();
  const first = await stream.next();
  gate.release();
  await hub.settled();
  const updates = await readUntil(stream, (got) => count !== undefined && got.length >= count, [first.value as Update]);
  await stream.return?.();
  return updates;
}

test('resuming one request from its start while the burst it replays arrives live: every event once, in order, not cut off', async () => {
  const { id, viewer } = await studentRequest();
  await commitBurstHeld(id);
  const expected = (await committedRequestEvents(testDatabase.database.db, id, 0)).map((event) => event.sequence);
  expect(expected.length).toBeGreaterThan(BURST);

  const updates = await readThroughBurst(await requestProgressStream(deps, { viewer, expiresAt: null }, id, 0), expected.length);
  expect(sequences(updates)).toEqual(expected);
});

test("resuming a student's feed from before the burst while it arrives live: every event once, in order, not cut off", async () => {
  const { id, viewer } = await studentRequest();
  const before = await committedPosition(testDatabase.database.db);
  await commitBurstHeld(id);
  const expected = (await committedRequestEvents(testDatabase.database.db, id, 0)).filter((event) => event.position > before);
  expect(expected).toHaveLength(BURST);

  const updates = await readThroughBurst(await requestUpdatesStream(deps, { viewer, expiresAt: null }, {}, String(before)), expected.length);
  expect(positions(updates)).toEqual(expected.map((event) => event.position));
});

test('a burst released as the stream opens, before or after its starting point is read, is sorted out once it starts', async () => {
  const { id, viewer } = await studentRequest();
  await commitBurstHeld(id);
  // Subscribed to the hub at once: the burst reaches it while the snapshot is read, or just after.
  const opening = requestProgressStream(deps, { viewer, expiresAt: null }, id, 0);
  gate.release();
  await hub.settled();
  const stream = (await opening)[Symbol.asyncIterator]();
  const expected = (await committedRequestEvents(testDatabase.database.db, id, 0)).map((event) => event.sequence);
  const updates = await readUntil(stream, (got) => got.length >= expected.length);
  expect(sequences(updates)).toEqual(expected);
  await stream.return?.();
});

/** One commit over several requests: `count` rounds, each request's status flipping between pending and failed (a failure, then a retry event). */
async function commitStatusFlips(ids: string[], count: number): Promise<void> {
  await testDatabase.database.db.transaction(async (tx) => {
    for (let round = 1; round <= count; round++) {
      for (const id of ids) await tx.update(contentRequests).set({ status: round % 2 ? 'failed' : 'pending' }).where(eq(contentRequests.id, id));
    }
  });
}

test("a feed resumed with a filter while a burst of others' events arrives live: exactly the events the filter keeps, once, in order, not cut off", async () => {
  const mine = await studentRequest();
  const others = await studentRequest();
  const admin: Viewer = { userId: 'burst-admin', role: 'admin', organizationId: null };
  const before = await committedPosition(testDatabase.database.db);
  gate.holding = true;
  await commitStatusFlips([mine.id, others.id], BURST);
  await waitFor(() => gate.held.length >= 2 * BURST, `the burst's ${2 * BURST} notifications`);
  const expected = (await committedFeedEvents(testDatabase.database.db, before)).filter(
    (event) => event.requestId === mine.id && event.newStatus === 'failed',
  );
  expect(expected).toHaveLength(BURST / 2);

  const filter = { studentId: mine.viewer.userId, statuses: ['failed' as const] };
  const updates = await readThroughBurst(await requestUpdatesStream(deps, { viewer: admin, expiresAt: null }, filter, String(before)), expected.length);
  expect(positions(updates)).toEqual(expected.map((event) => event.position));
});

test('resuming a request whose burst ends it (cancelled) while the burst arrives live: every event once, then the stream ends', async () => {
  const { id, viewer } = await studentRequest();
  gate.holding = true;
  await testDatabase.database.db.transaction(async (tx) => {
    for (let change = 1; change < BURST; change++) {
      await tx.update(contentRequests).set({ progressPercentage: change % 2 ? 10 : 20 }).where(eq(contentRequests.id, id));
    }
    await tx.update(contentRequests).set({ status: 'cancelled' }).where(eq(contentRequests.id, id));
  });
  await waitFor(() => gate.held.length >= BURST, `the burst's ${BURST} notifications`);
  const expected = (await committedRequestEvents(testDatabase.database.db, id, 0)).map((event) => event.sequence);

  const stream = (await requestProgressStream(deps, { viewer, expiresAt: null }, id, 0))[Symbol.asyncIterator]();
  const first = await stream.next();
  gate.release();
  await hub.settled();
  const updates = await readUntil(stream, () => false, [first.value as Update]);
  expect(sequences(updates)).toEqual(expected);
  expect(updates.at(-1)).toMatchObject({ kind: 'event', event: { newStatus: 'cancelled' } });
  await expect(stream.next()).resolves.toMatchObject({ done: true });
});

test('events committed after a resumed stream read its starting point are not taken for covered: the burst and the later events, each once, in order', async () => {
  const LATER = MAX_UNREAD / 4;
  const { id, viewer } = await studentRequest();
  const before = await committedPosition(testDatabase.database.db);
  await commitBurstHeld(id);
  const feed = (await requestUpdatesStream(deps, { viewer, expiresAt: null }, {}, String(before)))[Symbol.asyncIterator]();
  const request = (await requestProgressStream(deps, { viewer, expiresAt: null }, id, 0))[Symbol.asyncIterator]();
  const firsts = [(await feed.next()).value as Update, (await request.next()).value as Update];
  // Held as well: the hub passes them on right behind the burst.
  await commitBurst(id, LATER);
  await waitFor(() => gate.held.length >= BURST + LATER, `the later ${LATER} notifications`);
  gate.release();
  await hub.settled();

  const expected = await committedRequestEvents(testDatabase.database.db, id, 0);
  const fromFeed = await readUntil(feed, (got) => got.length >= BURST + LATER, [firsts[0]!]);
  expect(fromFeed.map((update) => (update.kind === 'event' ? update.event.position : update.kind))).toEqual(
    expected.filter((event) => event.position > before).map((event) => event.position),
  );
  const fromRequest = await readUntil(request, (got) => got.length >= expected.length, [firsts[1]!]);
  expect(sequences(fromRequest)).toEqual(expected.map((event) => event.sequence));
  await feed.return?.();
  await request.return?.();
});

test("a purge during a resumed feed's replay, of events whose live copies were dropped as covered: the feed ends with BAD_USER_INPUT, never a silent gap", async () => {
  const { db } = testDatabase.database;
  const REPLAY_BATCH = 1_000; // subscriptions.ts: the second batch is read only once the reader has taken the first
  const admin: Viewer = { userId: 'burst-admin', role: 'admin', organizationId: null };
  const { id } = await studentRequest();
  const before = await committedPosition(db);
  gate.holding = true;
  await commitBurst(id, REPLAY_BATCH);
  // Behind the first batch: a request finished long ago, which the purge removes while the reader pauses.
  const old = await insertRequest(db);
  await db.update(contentRequests).set({ status: 'cancelled' }).where(eq(contentRequests.id, old.id));
  await ageRequests(db, [old.id], 60);
  await commitBurst(id, MAX_UNREAD / 4);
  const committed = await committedFeedEvents(db, before);
  await waitFor(() => gate.held.length >= committed.length, `the ${committed.length} notifications`);

  const stream = (await requestUpdatesStream(deps, { viewer: admin, expiresAt: null }, {}, String(before)))[Symbol.asyncIterator]();
  const first = await stream.next();
  const purged = await purgeFinishedRequests(db, { cutoff: new Date(Date.now() - 30 * 86_400_000), batchSize: 10, paced: false });
  expect(purged.requests).toBe(1);
  gate.release();
  await hub.settled();

  const updates = [first.value as Update];
  const failure = await readToEnd(stream, updates);
  expect(failure).toMatchObject({ code: 'BAD_USER_INPUT' });
  // What it sent before saying so is the feed in order, without the purged request's events.
  const kept = committed.filter((event) => event.requestId !== old.id).map((event) => event.position);
  expect(positions(updates)).toEqual(kept);
});

test("a purge during the replay of a finished request being resumed: the stream ends with BAD_USER_INPUT, never as if its history were complete", async () => {
  const { db } = testDatabase.database;
  const REPLAY_BATCH = 1_000; // subscriptions.ts: the second batch is read only once the reader has taken the first
  const { id, viewer } = await studentRequest();
  await commitBurst(id, REPLAY_BATCH);
  await db.update(contentRequests).set({ status: 'cancelled' }).where(eq(contentRequests.id, id));
  await ageRequests(db, [id], 60);
  await hub.caughtUp();
  const history = await committedRequestEvents(db, id, 0);
  expect(history.length).toBeGreaterThan(REPLAY_BATCH);

  const stream = (await requestProgressStream(deps, { viewer, expiresAt: null }, id, 0))[Symbol.asyncIterator]();
  const updates = [(await stream.next()).value as Update];
  const purged = await purgeFinishedRequests(db, { cutoff: new Date(Date.now() - 30 * 86_400_000), batchSize: 10, paced: false });
  expect(purged.requests).toBe(1);
  const failure = await readToEnd(stream, updates);
  expect({ sent: updates.length, failure }).toMatchObject({ sent: REPLAY_BATCH, failure: { code: 'BAD_USER_INPUT' } });
});

test("a burst released as a student's feed resumes, before or after its cursor is checked, is sorted out once it starts; a stream ended mid-replay takes nothing more", async () => {
  const { id, viewer } = await studentRequest();
  const before = await committedPosition(testDatabase.database.db);
  await commitBurstHeld(id);
  const opening = requestUpdatesStream(deps, { viewer, expiresAt: null }, {}, String(before));
  const ended = requestUpdatesStream(deps, { viewer, expiresAt: null }, {}, String(before));
  gate.release();
  await hub.settled();
  const stream = (await opening)[Symbol.asyncIterator]();
  const expected = (await committedRequestEvents(testDatabase.database.db, id, 0)).filter((event) => event.position > before);
  const updates = await readUntil(stream, (got) => got.length >= expected.length);
  expect(updates.map((update) => (update.kind === 'event' ? update.event.position : update.kind))).toEqual(expected.map((event) => event.position));
  await stream.return?.();

  const cutOffs = hub.stats.cutOffs;
  const left = (await ended)[Symbol.asyncIterator]();
  await left.next();
  await left.return?.();
  expect(hub.subscriberCountOf(`student:${viewer.userId}`)).toBe(0);
  await commitBurst(id, BURST);
  await hub.caughtUp();
  await expect(left.next()).resolves.toMatchObject({ done: true });
  expect(hub.stats.cutOffs).toBe(cutOffs);
});

test('new events a paused reader leaves unread still cut it off with CONFLICT once there are more than the limit', async () => {
  const { id, viewer } = await studentRequest();
  const stream = (await requestProgressStream(deps, { viewer, expiresAt: null }, id, null))[Symbol.asyncIterator]();
  const snapshot = await stream.next();
  expect(snapshot.value).toMatchObject({ kind: 'snapshot' });
  await commitBurst(id, BURST);
  await hub.caughtUp();
  const read: Update[] = [];
  const failure = await readToEnd(stream, read);
  expect(failure).toMatchObject({ code: 'CONFLICT' });
  expect(read.length).toBeLessThanOrEqual(MAX_UNREAD);
});

/**
 * The same database, but the answer to a statement about content_requests
 * reaches the service only when `deliver()` is called, as over a slow link: what
 * commits meanwhile is newer than the answer's snapshot. Every statement's text is kept.
 */
function lateAnswers(): { db: Queryable; statements: string[]; waiting(): boolean; deliver(): void } {
  const { database } = testDatabase;
  const statements: string[] = [];
  let held: (() => void) | undefined;
  let holdNext = true;
  const driver = database.kind === 'postgres' ? database.pool : database.pglite;
  const query = async (...args: unknown[]) => {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
    statements.push(text);
    const result = await (driver.query as (...a: unknown[]) => Promise<unknown>)(...args);
    if (holdNext && text.includes('from "content_requests"')) {
      holdNext = false;
      await new Promise<void>((resolve) => (held = resolve));
    }
    return result;
  };
  // A proxy, so the drivers' own instanceof checks still hold.
  const late = new Proxy(driver, {
    get: (target, key) => (key === 'query' ? query : Reflect.get(target, key, target)),
  });
  const db = (database.kind === 'postgres' ? drizzleNodePg(late as typeof database.pool, { schema: tables }) : drizzlePglite(late as typeof database.pglite, { schema: tables })) as unknown as Queryable;
  return { db, statements, waiting: () => held !== undefined, deliver: () => held?.() };
}

test('more new events than the limit while a stream reads its snapshot: let go, read from the table after it; every one once, in order, not cut off', async () => {
  const { id, viewer } = await studentRequest();
  const late = lateAnswers();
  const opening = requestProgressStream({ ...deps, db: late.db }, { viewer, expiresAt: null }, id, null);
  await waitFor(late.waiting, "the snapshot's answer on its way");
  // Committed after the snapshot was read, delivered by the hub before the stream starts.
  await commitBurst(id, BURST);
  await hub.caughtUp();
  const readsBefore = late.statements.length;
  late.deliver();
  const stream = (await opening)[Symbol.asyncIterator]();
  const expected = (await committedRequestEvents(testDatabase.database.db, id, 0)).map((event) => event.sequence);
  const updates = await readUntil(stream, (got) => got.length >= expected.length);
  expect(sequences(updates)).toEqual([`snapshot ${expected.length - BURST}`, ...expected.slice(expected.length - BURST)]);
  // They came from the table: the stream held none of them past the limit.
  expect(late.statements.slice(readsBefore).some((text) => text.includes('from "request_events"'))).toBe(true);
  await stream.return?.();
});
