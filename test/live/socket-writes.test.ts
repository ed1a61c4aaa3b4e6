/**
 * A shared live event's frames are held per socket and written together
 * (src/http/outgoing-frames.ts); a socket whose share of one event passes
 * 64 KB is written in several writes during the fan-out. Through the real
 * server and graphql-ws: every subscription on such a socket, and one on a
 * socket of its own, gets every change once, in order, with nothing else
 * (a snapshot first, then one EVENT per change).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { heldFrameWrites } from '../../src/http/outgoing-frames.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { connectWs, PROGRESS, type LiveSubscription, type WsConnection } from '../helpers/live.js';
import { reportStage, submitRequest, type Client } from '../helpers/requests.js';

const SHARE = 300; // ≈ 500 bytes a frame: ≈ 150 KB of one event on one socket
let app: TestApp;
const tokens: Record<string, string> = {};
const sockets: WsConnection[] = [];
beforeAll(async () => {
  app = await startTestApp({ env: { LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET: String(SHARE), LIVE_MAX_SUBSCRIPTIONS_PER_USER: String(SHARE + 10) } });
  tokens.admin = await app.token({ sub: 'writes-admin', role: 'admin' });
  tokens.student = await app.token({ sub: 'writes-student', role: 'student', organization_id: 'writes-org' });
  tokens.worker = await app.token({ sub: 'writes-worker', role: 'worker' });
});
afterAll(async () => {
  await Promise.all(sockets.map((socket) => socket.dispose()));
  await app?.close();
});

const as = (who: string): Client => ({ url: app.url, token: tokens[who]! });

test('a socket with a share of one event larger than one write gets every change once, in order', { timeout: 180_000 }, async () => {
  const { id } = await submitRequest(as('student'));
  const crowded = connectWs(app.url, tokens.admin!);
  const alone = connectWs(app.url, tokens.admin!);
  sockets.push(crowded, alone);
  const subscribers: LiveSubscription[] = [
    ...Array.from({ length: SHARE }, () => crowded.subscribe(PROGRESS, { id })),
    alone.subscribe(PROGRESS, { id }),
  ];
  // 301 openings, each with its snapshot read: slow on a busy machine, so a longer wait than the helper's 10 s.
  await Promise.all(subscribers.map((stream) => stream.waitForPayloads(1, 60_000)));

  const writes: number[] = [];
  heldFrameWrites.observe = (frames) => writes.push(frames);
  try {
    await reportStage(as('worker'), id, 'validation', 'IN_PROGRESS');
    await reportStage(as('worker'), id, 'validation', 'IN_PROGRESS', 40);
    await reportStage(as('worker'), id, 'validation', 'IN_PROGRESS', 60);
    await Promise.all(subscribers.map((stream) => stream.waitForPayloads(4, 60_000)));
  } finally {
    heldFrameWrites.observe = undefined;
  }
  const received = subscribers.map((stream) => stream.payloads());
  // Each frame once; the crowded socket's share of each event took more than one write.
  expect(writes.reduce((sum, frames) => sum + frames, 0)).toBe(3 * (SHARE + 1));
  expect(Math.max(...writes)).toBeLessThan(SHARE);

  const expected = received.at(-1)!;
  expect(expected.map((payload) => payload.kind)).toEqual(['SNAPSHOT', 'EVENT', 'EVENT', 'EVENT']);
  const sequences = expected.map((payload) => Number(payload.sequence));
  expect(sequences.slice(1)).toEqual([sequences[0]! + 1, sequences[0]! + 2, sequences[0]! + 3]);
  for (const payloads of received) expect(payloads).toEqual(expected);
});
