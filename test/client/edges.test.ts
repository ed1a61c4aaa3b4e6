/**
 * The typed client where a frontend leaves it to fend for itself: a caller
 * that stops reading (memory stays bounded, nothing is lost), a token the
 * service refused that getToken() hands back (the watch ends instead of
 * retrying forever), a getToken() that fails, and a watch ended by the
 * caller's AbortSignal. Over WebSocket and SSE.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TrackerError, type RequestUpdate } from '../../client/index.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { driveToCompletion, submitRequest } from '../helpers/requests.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { collect, trackerClient } from '../helpers/tracker-client.js';

let app: TestApp;
let proxy: TcpProxy;
const tokens = { student: '', worker: '' };
const STUDENT = { sub: 'edges-student', role: 'student', organization_id: 'edges-org' } as const;
beforeAll(async () => {
  app = await startTestApp();
  proxy = await startTcpProxy(app.url);
  tokens.student = await app.token(STUDENT);
  tokens.worker = await app.token({ sub: 'edges-worker', role: 'worker' });
});
afterAll(async () => {
  await proxy?.close();
  await app?.close();
});

const student = () => ({ url: app.url, token: tokens.student });
const worker = () => ({ url: app.url, token: tokens.worker });
const noSubscriptionLeft = () =>
  waitFor(() => app.running.hub.subscriberCount === 0 && proxy.openConnections() === 0, 'no subscription or connection left', 10_000);

describe.each(['ws', 'sse'] as const)('over %s', (transport) => {
  test('a caller that stops reading: at most maxBufferedUpdates held, then resumed on a new connection, every sequence once', async () => {
    const client = trackerClient(proxy.url, transport, () => tokens.student, { maxBufferedUpdates: 3 });
    try {
      const { id } = await submitRequest(student());
      const watch = client.watchRequest(id);
      const first = await watch.next();
      expect(first.value?.kind).toBe('SNAPSHOT');
      // Five stages, each started, at four progress steps and completed, while the caller reads nothing.
      await driveToCompletion(worker(), id, { progressSteps: [20, 40, 60, 80] });
      const rest: RequestUpdate[] = [];
      for await (const update of watch) rest.push(update);
      const sequences = [first.value as RequestUpdate, ...rest].map((update) => update.sequence);
      expect(sequences).toEqual(sequences.map((_, i) => i + 1));
      expect(sequences.length).toBeGreaterThan(30);
      expect(rest.at(-1)?.status).toBe('COMPLETED');
      // Stopping at three held updates took the watch through several subscriptions (SSE may reuse a pooled connection).
      expect(client.states.filter((state) => state === 'reconnecting').length).toBeGreaterThan(3);
    } finally {
      await client.close();
    }
  });

  test('getToken() gives back the token the service refused: the watch ends UNAUTHENTICATED, no retry loop', async () => {
    const expired = await app.token(STUDENT, { expiresIn: '2s' });
    let asked = 0;
    const client = trackerClient(proxy.url, transport, () => {
      asked++;
      return expired;
    });
    try {
      const { id } = await submitRequest(student());
      const watched = collect(client.watchRequest(id));
      await watched.waitForUpdates((updates) => updates.length >= 1, 'the snapshot');
      const { error } = await watched.ended;
      expect(error).toBeInstanceOf(TrackerError);
      expect((error as TrackerError).code).toBe('UNAUTHENTICATED');
      // Once to connect, once more after the refusal: then it stops asking.
      expect(asked).toBe(2);
      await noSubscriptionLeft();
    } finally {
      await client.close();
    }
  });

  test('a getToken() that fails ends the watch UNAUTHENTICATED without connecting', async () => {
    const client = trackerClient(proxy.url, transport, () => Promise.reject(new Error('signed out')));
    try {
      const connectionsBefore = proxy.acceptedConnections();
      const { error } = await collect(client.watchUpdates()).ended;
      expect(error).toBeInstanceOf(TrackerError);
      expect((error as TrackerError).code).toBe('UNAUTHENTICATED');
      expect(proxy.acceptedConnections()).toBe(connectionsBefore);
    } finally {
      await client.close();
    }
  });

  test("the caller's AbortSignal ends the watch (done, no error) and leaves nothing open on the service", async () => {
    const client = trackerClient(proxy.url, transport, () => tokens.student);
    try {
      const { id } = await submitRequest(student());
      const stop = new AbortController();
      const watched = collect(client.watchRequest(id, { signal: stop.signal }));
      const feed = collect(client.watchUpdates({}, { signal: stop.signal, withRequest: true, withEta: true }));
      await watched.waitForUpdates((updates) => updates.length >= 1, 'the snapshot');
      const [snapshot] = await feed.waitForUpdates((updates) => updates.some((u) => u.requestId === id), 'the feed snapshot');
      expect(snapshot?.request).toEqual({ topic: 'Tides', errorStage: null, errorMessage: null });
      expect(Date.parse(snapshot!.estimatedCompletionAt!)).toBeGreaterThan(Date.now() - 60_000);
      expect(watched.updates[0]).not.toHaveProperty('estimatedCompletionAt');
      stop.abort();
      expect(await Promise.all([watched.ended, feed.ended])).toEqual([{}, {}]);
      await noSubscriptionLeft();
    } finally {
      await client.close();
    }
  });
});

test('close() while a refused connection is still being made leaves no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    // A token the service refuses (4403), the client closed at several points of the connection being made.
    for (const afterMs of [0, 1, 2, 5, 10, 20]) {
      const client = trackerClient(proxy.url, 'ws', () => 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged');
      const watched = collect(client.watchUpdates());
      await new Promise((resolve) => setTimeout(resolve, afterMs));
      await client.close();
      const { error } = await watched.ended;
      if (error) expect((error as TrackerError).code).toBe('UNAUTHENTICATED');
    }
    // Rejections are reported after the microtask queue drains: give them a turn of the event loop.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
