/**
 * The typed client's ends and edges, over WebSocket and SSE: a token that
 * expires is replaced by asking getToken() again and the stream goes on; a
 * request out of reach ends the watch with a typed NOT_FOUND; breaking out of
 * the loop or close() leaves no subscription on the service and no connection.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { TrackerError } from '../../client/index.js';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { driveToCompletion, reportStage, submitRequest } from '../helpers/requests.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { collect, trackerClient } from '../helpers/tracker-client.js';

let app: TestApp;
let proxy: TcpProxy;
const tokens = { student: '', worker: '' };
const STUDENT = { sub: 'client-student', role: 'student', organization_id: 'client-org' } as const;
beforeAll(async () => {
  app = await startTestApp();
  proxy = await startTcpProxy(app.url);
  tokens.student = await app.token(STUDENT);
  tokens.worker = await app.token({ sub: 'client-worker', role: 'worker' });
});
afterAll(async () => {
  await proxy?.close();
  await app?.close();
});

const worker = () => ({ url: app.url, token: tokens.worker });
// No stream on the hub, and no connection through the proxy: an idle keep-alive connection in
// fetch's pool closes at the server's keep-alive timeout, a stream left open never would.
const noSubscriptionLeft = () =>
  waitFor(() => app.running.hub.subscriberCount === 0 && proxy.openConnections() === 0, 'no subscription or connection left', 10_000);

describe.each(['ws', 'sse'] as const)('over %s', (transport) => {
  test('a token that expires: getToken() is asked again and the stream goes on, every sequence once', async () => {
    // The first token lives two seconds; the ones asked for after it expired live long.
    const asked: string[] = [];
    const client = trackerClient(proxy.url, transport, async () => {
      const token = await app.token(STUDENT, { expiresIn: asked.length === 0 ? '2s' : '1h' });
      asked.push(token);
      return token;
    });
    try {
      const { id } = await submitRequest({ url: app.url, token: tokens.student });
      const watched = collect(client.watchRequest(id));
      await watched.waitForUpdates((updates) => updates.length >= 1, 'the snapshot');
      await reportStage(worker(), id, 'validation', 'IN_PROGRESS');
      await waitFor(() => asked.length >= 2, 'getToken() asked again after the first token expired', 10_000);
      await driveToCompletion(worker(), id);
      expect(await watched.ended).toEqual({});
      const sequences = watched.updates.map((update) => update.sequence);
      expect(sequences).toEqual(sequences.map((_, i) => i + 1));
      expect(watched.updates.at(-1)?.status).toBe('COMPLETED');
    } finally {
      await client.close();
    }
  });

  test('a request out of reach ends the watch with a TrackerError coded NOT_FOUND', async () => {
    const client = trackerClient(proxy.url, transport, () => tokens.student);
    try {
      const { error } = await collect(client.watchRequest('00000000-0000-4000-8000-000000000000')).ended;
      expect(error).toBeInstanceOf(TrackerError);
      expect((error as TrackerError).code).toBe('NOT_FOUND');
      await noSubscriptionLeft();
    } finally {
      await client.close();
    }
  });

  test('breaking out of the loop ends the subscription on the service and closes the connection', async () => {
    const client = trackerClient(proxy.url, transport, () => tokens.student);
    try {
      await submitRequest({ url: app.url, token: tokens.student });
      for await (const update of client.watchUpdates()) {
        expect(update.kind).toBe('SNAPSHOT');
        expect(app.running.hub.subscriberCount).toBe(1);
        break;
      }
      await noSubscriptionLeft();
    } finally {
      await client.close();
    }
  });

  test('close() ends every open watch (done, no error), reports closed, and leaves nothing open', async () => {
    const client = trackerClient(proxy.url, transport, () => tokens.student);
    const { id } = await submitRequest({ url: app.url, token: tokens.student });
    const one = collect(client.watchRequest(id));
    const feed = collect(client.watchUpdates());
    await one.waitForUpdates((updates) => updates.length >= 1, 'the request snapshot');
    await feed.waitForUpdates((updates) => updates.length >= 1, 'a feed snapshot');
    await client.close();
    expect(await Promise.all([one.ended, feed.ended])).toEqual([{}, {}]);
    expect(client.states.at(-1)).toBe('closed');
    expect(client.states.slice(0, 2)).toEqual(['connecting', 'live']);
    await noSubscriptionLeft();
  });
});

test('query(): data over HTTP with the token, and a TrackerError carrying the code on an error', async () => {
  const client = trackerClient(proxy.url, 'ws', () => tokens.student);
  const { viewer } = await client.query<{ viewer: { id: string } }>('{ viewer { id } }');
  expect(viewer.id).toBe(STUDENT.sub);
  const refused = await client
    .query('mutation ($id: ID!) { cancelContentRequest(id: $id) { id } }', { id: '00000000-0000-4000-8000-000000000000' })
    .catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(TrackerError);
  expect((refused as TrackerError).code).toBe('NOT_FOUND');
  const anonymous = trackerClient(proxy.url, 'ws', () => 'not-a-jwt');
  expect(await anonymous.query('{ viewer { id } }').catch((error: TrackerError) => error.code)).toBe('UNAUTHENTICATED');
  dataOf(await app.graphql('{ viewer { id } }', { token: tokens.student }));
});
