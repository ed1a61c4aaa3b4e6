/**
 * One execution (and, over WebSocket, one serialization) per event for every
 * subscription with the same operation and variables, through the real
 * server and real graphql-ws and SSE clients; what each subscriber receives
 * is still decided by its own access, and a viewer-dependent selection
 * (`request`) is executed per subscriber.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { sharedResultStats } from '../../src/live/shared-results.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { connectWs, PROGRESS, subscribeSse, UPDATES, type LiveSubscription, type WsConnection } from '../helpers/live.js';
import { reportStage, submitRequest, type Client } from '../helpers/requests.js';

let app: TestApp;
const tokens: Record<string, string> = {};
const sockets: WsConnection[] = [];
const streams: LiveSubscription[] = [];
beforeAll(async () => {
  app = await startTestApp();
  tokens.ana = await app.token({ sub: 'shared-ana', role: 'student', organization_id: 'shared-north' });
  tokens.ben = await app.token({ sub: 'shared-ben', role: 'student', organization_id: 'shared-north' });
  tokens.northAdmin = await app.token({ sub: 'shared-north-admin', role: 'org_admin', organization_id: 'shared-north' });
  tokens.admin = await app.token({ sub: 'shared-admin', role: 'admin' });
  tokens.worker = await app.token({ sub: 'shared-worker', role: 'worker' });
});
afterAll(async () => {
  await Promise.all(streams.map((stream) => stream.close()));
  await Promise.all(sockets.map((socket) => socket.dispose()));
  await app?.close();
});

const as = (who: string): Client => ({ url: app.url, token: tokens[who]! });
const socketOf = (who: string) => {
  const socket = connectWs(app.url, tokens[who]!);
  sockets.push(socket);
  return socket;
};
const opened = (stream: LiveSubscription) => {
  streams.push(stream);
  return stream;
};
const counts = () => ({ ...sharedResultStats });

test('one change to many subscribers of one request is executed once and serialized once', async () => {
  const { id } = await submitRequest(as('ana'));
  // Two viewers, several sockets, both transports: one operation, the same variables.
  const subscribers = [
    ...[socketOf('ana'), socketOf('ana'), socketOf('northAdmin')].flatMap((socket) => [0, 1, 2].map(() => socket.subscribe(PROGRESS, { id }))),
    await subscribeSse(app.url, tokens.northAdmin!, PROGRESS, { id }),
  ].map(opened);
  await Promise.all(subscribers.map((stream) => stream.waitForPayloads(1))); // the snapshots: each subscriber's own
  const before = counts();

  await reportStage(as('worker'), id, 'validation', 'IN_PROGRESS');
  const payloads = await Promise.all(subscribers.map(async (stream) => (await stream.waitForPayloads(2))[1]));

  expect(payloads[0]).toMatchObject({ kind: 'EVENT', requestId: id, status: 'VALIDATING', event: { eventType: 'STAGE_STARTED' } });
  for (const payload of payloads) expect(payload).toEqual(payloads[0]);
  const after = counts();
  expect(after.executed - before.executed).toBe(1);
  expect(after.reused - before.reused).toBe(subscribers.length - 1);
  expect(after.serialized - before.serialized).toBe(1);
  // Over WebSocket the frame is written from that JSON, outside each subscription's iterator pipeline; SSE's goes through it.
  expect(after.sentDirectly - before.sentDirectly).toBe(subscribers.length - 1);
});

test('subscribers sharing an execution still receive only the requests they may see', async () => {
  const { id: anaRequest } = await submitRequest(as('ana'));
  const { id: benRequest } = await submitRequest(as('ben'));
  // The same operation and variables for all three; each feed is the viewer's own.
  const feeds = {
    ana: opened(socketOf('ana').subscribe(UPDATES)),
    ben: opened(socketOf('ben').subscribe(UPDATES)),
    admin: opened(socketOf('admin').subscribe(UPDATES)),
  };
  const snapshotted = (feed: LiveSubscription, ids: string[]) => () =>
    ids.every((id) => feed.payloads().some((p) => p.kind === 'SNAPSHOT' && p.requestId === id));
  await waitFor(snapshotted(feeds.ana, [anaRequest]), 'ana’s snapshot');
  await waitFor(snapshotted(feeds.ben, [benRequest]), 'ben’s snapshot');
  await waitFor(snapshotted(feeds.admin, [anaRequest, benRequest]), 'the admin’s snapshot');

  await reportStage(as('worker'), anaRequest, 'validation', 'IN_PROGRESS');
  await reportStage(as('worker'), benRequest, 'validation', 'IN_PROGRESS');
  const events = (feed: LiveSubscription) => feed.payloads().filter((p) => p.kind === 'EVENT').map((p) => [p.requestId, p.status]);
  await waitFor(() => events(feeds.admin).length >= 2, 'both changes on the admin’s feed');
  // Whatever might still be on its way to the others has been handed over by now.
  await app.running.hub.caughtUp();
  await waitFor(() => events(feeds.ana).length >= 1 && events(feeds.ben).length >= 1, 'each student’s change');

  expect(events(feeds.admin)).toEqual([
    [anaRequest, 'VALIDATING'],
    [benRequest, 'VALIDATING'],
  ]);
  expect(events(feeds.ana)).toEqual([[anaRequest, 'VALIDATING']]);
  expect(events(feeds.ben)).toEqual([[benRequest, 'VALIDATING']]);
  expect(counts().reused).toBeGreaterThan(0); // ana's and the admin's change was one execution
  await Promise.all(Object.values(feeds).map((feed) => feed.close()));
  await waitFor(() => app.running.hub.subscriberCountOf('all') === 0, 'the feeds closed');
});

test('a selection that depends on the viewer (the whole request) is executed per subscriber', async () => {
  const { id } = await submitRequest(as('ana'));
  const query = `subscription ($id: ID!) { contentRequestProgress(id: $id) { sequence request { id status } } }`;
  const subscribers = [socketOf('ana').subscribe(query, { id }), socketOf('northAdmin').subscribe(query, { id })].map(opened);
  await Promise.all(subscribers.map((stream) => stream.waitForPayloads(1)));
  const before = counts();

  await reportStage(as('worker'), id, 'validation', 'IN_PROGRESS');
  for (const stream of subscribers) expect((await stream.waitForPayloads(2))[1]).toMatchObject({ request: { id, status: 'VALIDATING' } });
  const after = counts();
  expect(after.executed - before.executed).toBe(2);
  expect(after.reused - before.reused).toBe(0);
  expect(after.serialized - before.serialized).toBe(0);
});
