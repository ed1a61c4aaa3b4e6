/**
 * An SSE subscriber that hangs up a few milliseconds after sending its
 * subscribe request, before the server has started streaming, leaves nothing
 * behind: no hub subscription, and no slot of the user's subscription cap.
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { PROGRESS, subscribeSse, UPDATES } from '../helpers/live.js';
import { submitRequest } from '../helpers/requests.js';

const CAP = 5;
let app: TestApp;
let token: string;

beforeAll(async () => {
  app = await startTestApp({ env: { LIVE_MAX_SUBSCRIPTIONS_PER_USER: String(CAP) } });
  token = await app.token({ sub: 'hangs-up', role: 'student' });
});
afterAll(() => app?.close());

/** Sends an SSE subscribe over a raw socket and destroys it `afterMs` later. */
function subscribeAndHangUp(query: string, variables: Record<string, unknown>, afterMs: number): Promise<void> {
  const { hostname, port } = new URL(app.url);
  const body = JSON.stringify({ query, variables });
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `POST /graphql HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n` +
          `Content-Type: application/json\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      void sleep(afterMs).then(() => {
        socket.destroy();
        resolve();
      });
    });
    socket.on('error', () => resolve());
  });
}

test('subscribers that hang up before the first message leave no hub subscription and no used slot', async () => {
  const client = { url: app.url, token };
  const request = await submitRequest(client);
  for (let i = 0; i < 20; i++) {
    await subscribeAndHangUp(i % 2 ? PROGRESS : UPDATES, i % 2 ? { id: request.id } : {}, i % 5);
  }
  await waitFor(() => app.running.hub.subscriberCount === 0, 'every hub subscription released', 10_000);

  // Every slot is free again: the cap's worth of subscriptions opens.
  const open = [];
  for (let i = 0; i < CAP; i++) open.push(await subscribeSse(app.url, token, PROGRESS, { id: request.id }));
  await Promise.all(open.map((live) => live.waitForPayloads(1)));
  expect(open.every((live) => live.payloads()[0]?.kind === 'SNAPSHOT')).toBe(true);
  await Promise.all(open.map((live) => live.close()));
});
