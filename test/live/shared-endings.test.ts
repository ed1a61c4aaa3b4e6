/**
 * Streams of one token share one expiry timer, and every stream shares the
 * server's closing listener (src/live/live-stream.ts). Sharing must not let
 * one stream's end disturb another's: a stream closed early leaves the
 * others of its token to expire on time, a longer token's stream outlives
 * the expiry of a shorter one, and every user slot and hub subscription is
 * given back.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { connectWs, PROGRESS, subscribeSse, type WsConnection } from '../helpers/live.js';
import { reportStage, submitRequest } from '../helpers/requests.js';

const CAP = 4;
let app: TestApp;
let worker: string;
const sockets: WsConnection[] = [];
const student = { sub: 'endings-student', role: 'student', organization_id: 'endings-org' } as const;

beforeAll(async () => {
  app = await startTestApp({ env: { LIVE_MAX_SUBSCRIPTIONS_PER_USER: String(CAP) } });
  worker = await app.token({ sub: 'endings-worker', role: 'worker' });
});
afterAll(async () => {
  await Promise.all(sockets.map((socket) => socket.dispose()));
  await app?.close();
});

test('streams of one token expire together; one closed early, or one on a longer token, is not disturbed', async () => {
  const longLived = await app.token(student);
  const requestId = (await submitRequest({ url: app.url, token: longLived })).id;
  const shortLived = await app.token(student, { expiresIn: '2s' });
  const topic = `request:${requestId}` as const;

  const short = [
    await subscribeSse(app.url, shortLived, PROGRESS, { id: requestId }),
    await subscribeSse(app.url, shortLived, PROGRESS, { id: requestId }),
    await subscribeSse(app.url, shortLived, PROGRESS, { id: requestId }),
  ];
  const socket = connectWs(app.url, longLived);
  sockets.push(socket);
  const lasting = socket.subscribe(PROGRESS, { id: requestId });
  await Promise.all([...short, lasting].map((stream) => stream.waitForPayloads(1)));
  expect(app.running.hub.subscriberCountOf(topic)).toBe(4);

  // One of the token's streams closes early: the others still expire.
  await short[0]!.close();
  await waitFor(() => app.running.hub.subscriberCountOf(topic) === 3, 'the early one to leave the hub');
  await Promise.all(short.slice(1).map((stream) => stream.ended));
  for (const stream of short.slice(1)) {
    expect(stream.messages.find((m) => m.errors)?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  }
  await waitFor(() => app.running.hub.subscriberCountOf(topic) === 1, 'the expired ones to leave the hub');

  // The longer token's stream is still open and still delivers.
  expect(lasting.isEnded()).toBe(false);
  await reportStage({ url: app.url, token: worker }, requestId, 'validation', 'IN_PROGRESS', 40);
  const payloads = await lasting.waitForPayloads(2);
  expect(payloads[1]?.progressPercentage).toBeGreaterThan(0);

  // Every slot came back: the cap's worth opens again (one is the lasting stream).
  const reopened = [];
  for (let i = 0; i < CAP - 1; i++) reopened.push(await subscribeSse(app.url, longLived, PROGRESS, { id: requestId }));
  await Promise.all(reopened.map((stream) => stream.waitForPayloads(1)));
  expect(reopened.every((stream) => stream.payloads()[0]?.kind === 'SNAPSHOT')).toBe(true);
  await Promise.all(reopened.map((stream) => stream.close()));
  await socket.dispose();
  await waitFor(() => app.running.hub.subscriberCount === 0, 'every hub subscription released');
});
