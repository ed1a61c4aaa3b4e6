/**
 * What a live subscription may not outlive or outnumber: its token's expiry
 * (every stream ends with UNAUTHENTICATED and delivers nothing committed
 * after it, over SSE and WebSocket, both subscriptions), the caps on open
 * subscriptions per socket and per user; and the `connection_init` spellings
 * real clients send, with a refusal that says why.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { connectWs, PROGRESS, rawWs, subscribeSse, UPDATES, type LiveSubscription, type RawWs, type WsConnection } from '../helpers/live.js';
import { reportStage, submitRequest } from '../helpers/requests.js';

let app: TestApp;
const tokens = { student: '', other: '', worker: '' };
const sockets: WsConnection[] = [];
const raws: RawWs[] = [];
beforeAll(async () => {
  app = await startTestApp({ env: { LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET: '3', LIVE_MAX_SUBSCRIPTIONS_PER_USER: '5' } });
  tokens.student = await app.token({ sub: 'limits-student', role: 'student', organization_id: 'limits-org' });
  tokens.other = await app.token({ sub: 'limits-other', role: 'student', organization_id: 'limits-org' });
  tokens.worker = await app.token({ sub: 'limits-worker', role: 'worker' });
});
afterAll(async () => {
  for (const raw of raws) raw.socket.terminate();
  await Promise.all(sockets.map((socket) => socket.dispose()));
  await app?.close();
});

const submit = async (token = tokens.student) => (await submitRequest({ url: app.url, token })).id;
const reportProgress = (requestId: string, progress: number) =>
  reportStage({ url: app.url, token: tokens.worker }, requestId, 'validation', 'IN_PROGRESS', progress);

describe.each(['SSE', 'WebSocket'] as const)('a token that expires, over %s', (transport) => {
  test.each(['contentRequestProgress', 'contentRequestUpdates'] as const)(
    '%s ends with UNAUTHENTICATED at expiry and delivers nothing committed after it',
    async (field) => {
      const requestId = await submit();
      await reportProgress(requestId, 10);
      // The worker's view of the same request: shows when a change has been fanned out.
      const control = await subscribeSse(app.url, tokens.worker, PROGRESS, { id: requestId });
      await control.waitForPayloads(1);
      const shortLived = await app.token(
        { sub: 'limits-student', role: 'student', organization_id: 'limits-org' },
        { expiresIn: '2s' },
      );
      const expiresAt = JSON.parse(Buffer.from(shortLived.split('.')[1]!, 'base64url').toString()).exp * 1000;
      const query = field === 'contentRequestProgress' ? PROGRESS : UPDATES;
      const variables = field === 'contentRequestProgress' ? { id: requestId } : {};
      let stream: LiveSubscription;
      if (transport === 'SSE') stream = await subscribeSse(app.url, shortLived, query, variables);
      else {
        const socket = connectWs(app.url, shortLived);
        sockets.push(socket);
        stream = socket.subscribe(query, variables);
      }
      await stream.waitForPayloads(1);
      // A change before expiry arrives.
      await reportProgress(requestId, 50);
      await stream.waitForPayloads(2);

      await stream.ended; // at expiry, without the client doing anything
      const error = stream.messages.find((m) => m.errors)?.errors?.[0];
      expect(error?.extensions?.code, JSON.stringify(stream.messages.at(-1))).toBe('UNAUTHENTICATED');
      expect(error?.message).toMatch(/expired/);
      expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
      // An expired token is an answer, not a fault of the service: nothing logged as an error.
      expect(app.logs.filter((line) => line.level >= 50).map((line) => line.msg ?? line.err?.message)).toEqual([]);
      // A change after expiry: committed, fanned out by the hub, and not delivered.
      const delivered = stream.payloads().length;
      // The stream has left the hub: on the request only the worker's is left; the student's feed has none.
      if (field === 'contentRequestProgress') expect(app.running.hub.subscriberCountOf(`request:${requestId}`)).toBe(1);
      else expect(app.running.hub.subscriberCountOf('student:limits-student')).toBe(0);
      await reportProgress(requestId, 90);
      await control.waitForPayloads(3);
      expect(stream.payloads()).toHaveLength(delivered);
      await control.close();
    },
  );
});

describe('caps on open subscriptions', () => {
  test('per socket: past the cap a subscribe is refused with RATE_LIMITED; closing one makes room', async () => {
    const raw = await rawWs(app.url);
    raws.push(raw);
    await raw.init({ authorization: `Bearer ${tokens.other}` });
    for (const id of ['1', '2', '3', '4']) raw.subscribe(id, UPDATES);
    const refused = await raw.waitFor((m) => m.id === '4' && m.type === 'error', 'the fourth refused');
    expect(refused.payload[0].extensions.code).toBe('RATE_LIMITED');
    expect(refused.payload[0].message).toMatch(/3 operations open/);
    raw.send({ id: '1', type: 'complete' });
    await waitFor(() => app.running.hub.subscriberCountOf('student:limits-other') === 2, 'the first to close');
    raw.subscribe('5', UPDATES);
    await waitFor(() => app.running.hub.subscriberCountOf('student:limits-other') === 3, 'the fifth to open');
    expect(raw.messages.some((m) => m.id === '5' && m.type === 'error')).toBe(false);
    raw.socket.close();
    await waitFor(() => app.running.hub.subscriberCountOf('student:limits-other') === 0, 'all to close');
  });

  test('per user, across sockets and SSE: past the cap a subscription is refused with RATE_LIMITED', async () => {
    await submit(); // the feed has a snapshot to send
    const open: LiveSubscription[] = [];
    for (let i = 0; i < 3; i++) open.push(await subscribeSse(app.url, tokens.student, UPDATES));
    const socket = connectWs(app.url, tokens.student);
    sockets.push(socket);
    open.push(socket.subscribe(UPDATES), socket.subscribe(UPDATES));
    for (const stream of open) await stream.waitForPayloads(1);

    const overWs = socket.subscribe(UPDATES);
    await overWs.ended;
    expect(overWs.messages[0]?.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    const overSse = await subscribeSse(app.url, tokens.student, UPDATES);
    await overSse.ended;
    expect(overSse.messages[0]?.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    // Another user is not affected.
    const other = await subscribeSse(app.url, tokens.other, UPDATES);
    await waitFor(() => app.running.hub.subscriberCountOf('student:limits-other') === 1, 'the other user subscribed');
    await other.close();

    await open[0]!.close();
    await waitFor(() => app.running.hub.subscriberCountOf('student:limits-student') === 4, 'one to close');
    const again = await subscribeSse(app.url, tokens.student, UPDATES);
    await again.waitForPayloads(1);
    for (const stream of [again, ...open.slice(1)]) await stream.close();
  });
});

describe('connection_init', () => {
  const spellings: [string, (token: string) => Record<string, unknown>][] = [
    ['authorization', (token) => ({ authorization: `Bearer ${token}` })],
    ['Authorization', (token) => ({ Authorization: `Bearer ${token}` })],
    ['headers.Authorization', (token) => ({ headers: { Authorization: `Bearer ${token}` } })],
    ['headers.authorization', (token) => ({ headers: { authorization: `Bearer ${token}` } })],
    ['authToken (Apollo), no Bearer', (token) => ({ authToken: token })],
    ['token, no Bearer', (token) => ({ token })],
  ];
  test.each(spellings)('%s is accepted', async (_name, payload) => {
    const raw = await rawWs(app.url);
    raws.push(raw);
    await raw.init(payload(tokens.student));
    raw.subscribe('1', `query { viewer { id } }`);
    const next = await raw.waitFor((m) => m.id === '1' && m.type === 'next', 'the answer');
    expect(next.payload.data.viewer.id).toBe('limits-student');
    raw.socket.close();
  });

  test.each([
    ['no token', {}, /no token/],
    ['a token that is not a JWT', { authorization: 'Bearer nonsense' }, /not a valid JWT/],
    ['an expired token', 'expired', /expired/],
  ] as const)('%s: closed with 4403 and a reason saying what is wrong', async (_name, payload, reason) => {
    const init =
      payload === 'expired'
        ? { authorization: `Bearer ${await app.token({ sub: 'limits-student', role: 'student', organization_id: 'limits-org' }, { expiresIn: '-1m' })}` }
        : payload;
    const raw = await rawWs(app.url);
    raw.send({ type: 'connection_init', payload: init });
    const closed = await raw.closed;
    expect(closed.code).toBe(4403);
    expect(closed.reason).toMatch(reason);
  });
});
