/**
 * Live progress through real SSE and WebSocket clients, on both databases:
 * snapshot then every change in order, resuming, the many-request feed, the
 * access rules (including changes that must not arrive) and shutdown.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests } from '../../src/db/tables.js';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { connectWs, PROGRESS, subscribeSse, UPDATES, type WsConnection } from '../helpers/live.js';
import { driveToCompletion as driveAll, reportStage, submitRequest, type Client, type StageReportStatus } from '../helpers/requests.js';

let app: TestApp;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  app = await startTestApp();
  tokens.ana = await app.token({ sub: 'live-ana', role: 'student', organization_id: 'live-north' });
  tokens.ben = await app.token({ sub: 'live-ben', role: 'student', organization_id: 'live-north' });
  tokens.northAdmin = await app.token({ sub: 'live-north-admin', role: 'org_admin', organization_id: 'live-north' });
  tokens.admin = await app.token({ sub: 'live-admin', role: 'admin' });
  tokens.worker = await app.token({ sub: 'live-worker', role: 'worker' });
});
afterAll(() => app?.close());

const as = (who: string): Client => ({ url: app.url, token: tokens[who]! });
const submit = async (student: 'ana' | 'ben') => (await submitRequest(as(student))).id;
const report = (requestId: string, stage: string, status: StageReportStatus, progress?: number) =>
  reportStage(as('worker'), requestId, stage, status, progress);
const driveToCompletion = (requestId: string) => driveAll(as('worker'), requestId, { progressSteps: [50] });

/** The event log as the database has it, in the shape the subscription sends. */
async function eventLog(requestId: string) {
  const response = await app.graphql(
    `query ($id: ID!) { contentRequest(id: $id) { events(first: 500) { edges { node { sequence eventType newStatus progressPercentage } } } } }`,
    { token: tokens.admin, variables: { id: requestId } },
  );
  return dataOf(response).contentRequest.events.edges.map((edge: { node: Record<string, unknown> }) => edge.node);
}

const asEvents = (payloads: Record<string, any>[]) =>
  payloads.map((p) => ({
    sequence: p.sequence,
    eventType: p.event.eventType,
    newStatus: p.status,
    progressPercentage: p.progressPercentage,
  }));

describe.each(['SSE', 'WebSocket'] as const)('one request over %s', (transport) => {
  const sockets: WsConnection[] = [];
  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.dispose()));
  });
  const subscribe = async (token: string, variables: Record<string, unknown>) => {
    if (transport === 'SSE') return subscribeSse(app.url, token, PROGRESS, variables);
    const socket = connectWs(app.url, token);
    sockets.push(socket);
    return socket.subscribe(PROGRESS, variables);
  };

  test('a snapshot, then every change in order, then the stream ends with the request', async () => {
    const id = await submit('ana');
    const live = await subscribe(tokens.ana!, { id });
    const [snapshot] = await live.waitForPayloads(1); // subscribed: changes from here on arrive
    expect(snapshot).toMatchObject({ kind: 'SNAPSHOT', requestId: id, sequence: '1', status: 'PENDING', progressPercentage: 0, event: null });

    await driveToCompletion(id);
    const log = await eventLog(id);
    const payloads = await live.waitForPayloads(log.length);
    await live.ended; // completed requests end their stream
    expect(asEvents(payloads.slice(1))).toEqual(log.slice(1));
    expect(payloads.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100 });
    // Cursors (feed positions) only grow.
    const cursors = payloads.map((p) => BigInt(p.cursor));
    expect(cursors.slice(1).every((c, i) => c > cursors[i]!)).toBe(true);
  });

  test('a client that drops and resumes with its last sequence misses nothing and sees nothing twice', async () => {
    const id = await submit('ana');
    const first = await subscribe(tokens.ana!, { id });
    await first.waitForPayloads(1); // the snapshot: subscribed
    await report(id, 'validation', 'IN_PROGRESS');
    await report(id, 'validation', 'IN_PROGRESS', 40);
    const seen = await first.waitForPayloads(3);
    await first.close();

    // While the client is away:
    await report(id, 'validation', 'COMPLETED');
    await report(id, 'retrieval', 'IN_PROGRESS');
    const lastSequence = seen.at(-1)!.sequence;
    const resumed = await subscribe(tokens.ana!, { id, after: lastSequence });
    await report(id, 'retrieval', 'IN_PROGRESS', 60);

    const log = await eventLog(id);
    const rest = await resumed.waitForPayloads(log.length - Number(lastSequence));
    expect(rest.every((p) => p.kind === 'EVENT')).toBe(true);
    expect([...seen.map((p) => p.sequence), ...rest.map((p) => p.sequence)]).toEqual(log.map((e: { sequence: string }) => e.sequence));
    expect(asEvents(rest)).toEqual(log.slice(Number(lastSequence)));
    await resumed.close();
  });

  test('resuming on a finished request replays what is left, then ends', async () => {
    const id = await submit('ana');
    await driveToCompletion(id);
    const log = await eventLog(id);
    const caughtUp = await subscribe(tokens.ana!, { id, after: String(log.length) });
    await caughtUp.ended;
    expect(caughtUp.messages).toEqual([]);
    const behind = await subscribe(tokens.ana!, { id, after: String(log.length - 2) });
    await behind.ended;
    expect(behind.payloads().map((p) => p.sequence)).toEqual([String(log.length - 1), String(log.length)]);
  });

  test('resuming behind more events than one replay batch gets every one of them', async () => {
    const id = await submit('ana');
    // 1,100 progress events in one commit: more than a replay batch (1,000).
    await app.testDatabase.database.db.transaction(async (tx) => {
      for (let change = 1; change <= 1_100; change++) {
        await tx.update(contentRequests).set({ progressPercentage: change % 2 ? 10 : 20 }).where(eq(contentRequests.id, id));
      }
    });
    // Resumed at once: the hub may still be passing these 1,100 on, live copies of what the replay
    // reads, which do not count as unread (test/live/opening-during-burst.test.ts).
    const live = await subscribe(tokens.ana!, { id, after: '0' });
    const payloads = await live.waitForPayloads(1_101, 30_000);
    expect(payloads.map((p) => Number(p.sequence))).toEqual(Array.from({ length: 1_101 }, (_, i) => i + 1));
    await live.close();
  });

  test('a sequence the request has not reached is BAD_USER_INPUT, not a silent wait', async () => {
    const id = await submit('ana');
    const live = await subscribe(tokens.ana!, { id, after: '5' });
    await live.ended;
    expect(live.payloads()).toEqual([]);
    const error = live.messages.at(-1)?.errors?.[0];
    expect(error?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(error?.message).toMatch(/afterSequence.*now 1/);
  });

  test('another student’s request is NOT_FOUND, and so is one that does not exist', async () => {
    const bens = await submit('ben');
    for (const id of [bens, '00000000-0000-4000-8000-000000000000']) {
      const live = await subscribe(tokens.ana!, { id });
      await live.ended;
      expect(live.payloads()).toEqual([]);
      expect(live.messages.at(-1)?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    }
  });
});

describe('the many-request feed', () => {
  test('a student’s feed: a snapshot of their requests in flight, then their changes only', async () => {
    const mine = await submit('ana');
    const live = await subscribeSse(app.url, tokens.ana!, UPDATES);
    await waitFor(() => live.payloads().some((p) => p.requestId === mine), 'the snapshot of Ana’s request');
    expect(live.payloads().every((p) => p.kind === 'SNAPSHOT')).toBe(true);

    const bens = await submit('ben');
    await report(bens, 'validation', 'IN_PROGRESS');
    // A change of Ana's after Ben's: once it has arrived, Ben's would have too.
    await report(mine, 'validation', 'IN_PROGRESS');
    await waitFor(() => live.payloads().some((p) => p.kind === 'EVENT' && p.requestId === mine), 'Ana’s own change');
    expect(live.payloads().map((p) => p.requestId)).not.toContain(bens);
    await live.close();
  });

  test('an org admin’s feed carries the organization’s students; the admins’ failure feed only failures', async () => {
    const orgFeed = await subscribeSse(app.url, tokens.northAdmin!, UPDATES);
    const failures = connectWs(app.url, tokens.admin!);
    const failureFeed = failures.subscribe(UPDATES, { filter: { status: ['FAILED'] } });
    const hub = app.running.hub;
    await waitFor(() => hub.subscriberCountOf('organization:live-north') === 1 && hub.subscriberCountOf('all') === 1, 'both feeds on the hub');
    const openingFailures = failureFeed.payloads().length;

    const bens = await submit('ben');
    await report(bens, 'validation', 'IN_PROGRESS');
    await reportStage(as('worker'), bens, 'validation', 'FAILED', undefined, { errorMessage: 'unanswerable' });
    await waitFor(() => failureFeed.payloads().length > openingFailures, 'the failure');
    expect(failureFeed.payloads().slice(openingFailures)).toEqual([
      expect.objectContaining({ kind: 'EVENT', requestId: bens, status: 'FAILED', event: { eventType: 'FAILURE' } }),
    ]);
    await waitFor(
      () => orgFeed.payloads().filter((p) => p.kind === 'EVENT' && p.requestId === bens).length === 3,
      'created, started, failed on the org feed',
    );
    await orgFeed.close();
    await failures.dispose();
  });

  test('resuming with the last cursor replays exactly what was missed', async () => {
    const id = await submit('ana');
    const first = await subscribeSse(app.url, tokens.admin!, UPDATES, { filter: { studentId: 'live-ana' } });
    await first.waitForPayloads(1);
    await report(id, 'validation', 'IN_PROGRESS');
    await waitFor(() => first.payloads().some((p) => p.kind === 'EVENT' && p.requestId === id), 'the first change');
    const cursor = first.payloads().at(-1)!.cursor;
    await first.close();

    await report(id, 'validation', 'COMPLETED');
    await report(id, 'retrieval', 'IN_PROGRESS');
    const resumed = await subscribeSse(app.url, tokens.admin!, UPDATES, { filter: { studentId: 'live-ana' }, after: cursor });
    const missed = await resumed.waitForPayloads(2);
    expect(missed.map((p) => [p.kind, p.event.eventType])).toEqual([
      ['EVENT', 'STAGE_COMPLETED'],
      ['EVENT', 'STAGE_STARTED'],
    ]);
    expect(BigInt(missed[0]!.cursor)).toBeGreaterThan(BigInt(cursor));
    await resumed.close();
  });

  test('a cursor ahead of the feed is BAD_USER_INPUT, not a silent wait', async () => {
    const live = await subscribeSse(app.url, tokens.admin!, UPDATES, { after: '999999999' });
    await live.ended;
    expect(live.messages.at(-1)?.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringMatching(/ahead of the feed/) });
  });

  test('a cursor that is not one is BAD_USER_INPUT', async () => {
    const live = await subscribeSse(app.url, tokens.admin!, UPDATES, { after: 'yesterday' });
    await live.ended;
    expect(live.messages.at(-1)?.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('WebSocket authentication', () => {
  test('no token, or a bad one: the socket is closed with 4403 Forbidden', async () => {
    for (const token of [null, 'not-a-jwt']) {
      const socket = connectWs(app.url, token);
      expect((await socket.closed).code).toBe(4403);
      await socket.dispose();
    }
  });

  test('a socket whose token expires is closed with 4403 Forbidden', async () => {
    const shortLived = await app.token({ sub: 'live-ana', role: 'student', organization_id: 'live-north' }, { expiresIn: '2s' });
    const socket = connectWs(app.url, shortLived);
    const id = await submit('ana');
    const live = socket.subscribe(PROGRESS, { id });
    await live.waitForPayloads(1);
    const { code } = await socket.closed;
    expect(code).toBe(4403);
    await socket.dispose();
  });
});

describe('shutdown', () => {
  test('stopping the server completes open SSE and WebSocket subscriptions', async () => {
    const own = await startTestApp();
    const socket = connectWs(own.url, await own.token({ sub: 'stop-admin', role: 'admin' }));
    try {
      const token = await own.token({ sub: 'stop-admin', role: 'admin' });
      const sse = await subscribeSse(own.url, token, UPDATES);
      const ws = socket.subscribe(UPDATES);
      await waitFor(() => own.running.hub.subscriberCount === 2, 'both subscriptions on the hub');
      const stopped = Date.now();
      await own.close();
      await Promise.all([sse.ended, ws.ended]);
      expect(Date.now() - stopped).toBeLessThan(10_000);
      // Completed by the server, not broken off, on either transport.
      expect([sse.completed(), ws.completed()]).toEqual([true, true]);
      expect([...sse.messages, ...ws.messages].filter((m) => m.errors)).toEqual([]);
    } finally {
      await socket.dispose();
      await own.close();
    }
  });
});
