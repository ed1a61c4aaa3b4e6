/**
 * The typed client resumes across dropped connections: every connection
 * between it and the service is cut (a TCP proxy drops them, the service
 * stays up) while a worker drives requests through their stages, and still
 * every sequence arrives exactly once, in order, over WebSocket and over SSE,
 * for one request (watchRequest) and for the feed (watchUpdates).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RequestUpdate } from '../../client/index.js';
import { dataOf, STAGES, startTestApp, type TestApp } from '../helpers/app.js';
import { reportStage, submitRequest, type Client } from '../helpers/requests.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { collect, trackerClient } from '../helpers/tracker-client.js';

let app: TestApp;
let proxy: TcpProxy;
const tokens = { student: '', admin: '', worker: '' };
beforeAll(async () => {
  app = await startTestApp();
  proxy = await startTcpProxy(app.url);
  tokens.student = await app.token({ sub: 'resume-student', role: 'student', organization_id: 'resume-org' });
  tokens.admin = await app.token({ sub: 'resume-admin', role: 'admin' });
  tokens.worker = await app.token({ sub: 'resume-worker', role: 'worker' });
});
afterAll(async () => {
  await proxy?.close();
  await app?.close();
});

const worker = (): Client => ({ url: app.url, token: tokens.worker });

/** The request's event log as the database has it: the sequences a watcher must see. */
async function sequencesOf(requestId: string): Promise<number[]> {
  const response = await app.graphql(
    `query ($id: ID!) { contentRequest(id: $id) { events(first: 500) { edges { node { sequence } } } } }`,
    { token: tokens.admin, variables: { id: requestId } },
  );
  return dataOf(response).contentRequest.events.edges.map((edge: { node: { sequence: string } }) => Number(edge.node.sequence));
}

/**
 * Drives a request through every stage, cutting every connection after each
 * stage starts and reporting its progress while the watcher is away.
 */
async function driveWithCuts(requestId: string) {
  for (const stage of STAGES) {
    await reportStage(worker(), requestId, stage, 'IN_PROGRESS');
    proxy.cut();
    await reportStage(worker(), requestId, stage, 'IN_PROGRESS', 50);
    await reportStage(worker(), requestId, stage, 'COMPLETED');
  }
}

const sequencesFor = (updates: RequestUpdate[], requestId: string) =>
  updates.filter((update) => update.requestId === requestId).map((update) => update.sequence);

describe.each(['ws', 'sse'] as const)('over %s', (transport) => {
  test('watchRequest: a snapshot, then every sequence exactly once and in order across cut connections; ends with the request', async () => {
    const client = trackerClient(proxy.url, transport, () => tokens.student);
    try {
      const { id } = await submitRequest({ url: app.url, token: tokens.student });
      const watched = collect(client.watchRequest(id));
      await watched.waitForUpdates((updates) => updates.length >= 1, 'the snapshot');

      await driveWithCuts(id);
      expect(await watched.ended).toEqual({}); // done: the request completed
      const log = await sequencesOf(id);
      expect(log.length).toBeGreaterThan(STAGES.length * 3);
      expect(watched.updates.map((update) => update.sequence)).toEqual(log);
      expect(watched.updates[0]).toMatchObject({ kind: 'SNAPSHOT', event: null, status: 'PENDING' });
      expect(watched.updates.slice(1).every((update) => update.kind === 'EVENT' && update.event?.sequence === update.sequence)).toBe(true);
      expect(watched.updates.at(-1)).toMatchObject({ status: 'COMPLETED', progressPercentage: 100 });
      expect(client.states).toContain('reconnecting');
    } finally {
      await client.close();
    }
  });

  test('watchRequest from afterSequence: the events after it, no snapshot, and resumes likewise', async () => {
    const client = trackerClient(proxy.url, transport, () => tokens.student);
    try {
      const { id } = await submitRequest({ url: app.url, token: tokens.student });
      await reportStage(worker(), id, 'validation', 'IN_PROGRESS');
      const watched = collect(client.watchRequest(id, { afterSequence: 1 }));
      await watched.waitForUpdates((updates) => updates.length >= 1, 'the replayed event');
      proxy.cut();
      await driveWithCuts(id);
      expect(await watched.ended).toEqual({});
      expect(watched.updates.map((update) => update.sequence)).toEqual((await sequencesOf(id)).slice(1));
      expect(watched.updates.every((update) => update.kind === 'EVENT')).toBe(true);
    } finally {
      await client.close();
    }
  });

  test('watchRequest resumed at the end of a finished request: nothing more, and the watch ends', async () => {
    const client = trackerClient(proxy.url, transport, () => tokens.student);
    try {
      const { id } = await submitRequest({ url: app.url, token: tokens.student });
      await reportStage(worker(), id, 'validation', 'IN_PROGRESS');
      await client.query('mutation ($id: ID!) { cancelContentRequest(id: $id) { id } }', { id });
      const last = (await sequencesOf(id)).at(-1)!;
      const watched = collect(client.watchRequest(id, { afterSequence: last }));
      expect(await watched.ended).toEqual({});
      expect(watched.updates).toEqual([]);
    } finally {
      await client.close();
    }
  });

  test('watchUpdates: every sequence of every request in the feed exactly once, in order, with growing cursors, across cut connections', async () => {
    const studentId = `resume-feed-${transport}`;
    const studentToken = await app.token({ sub: studentId, role: 'student', organization_id: 'resume-org' });
    const client = trackerClient(proxy.url, transport, () => tokens.admin);
    try {
      const first = await submitRequest({ url: app.url, token: studentToken });
      const watched = collect(client.watchUpdates({ studentId }));
      await watched.waitForUpdates((updates) => updates.length >= 1, 'the snapshot of the first request');
      const second = await submitRequest({ url: app.url, token: studentToken });
      await driveWithCuts(first.id);
      await driveWithCuts(second.id);

      const logs = { first: await sequencesOf(first.id), second: await sequencesOf(second.id) };
      await watched.waitForUpdates(
        (updates) => sequencesFor(updates, second.id).length >= logs.second.length && sequencesFor(updates, first.id).length >= logs.first.length,
        'every event of both requests',
      );
      expect(sequencesFor(watched.updates, first.id)).toEqual(logs.first);
      expect(sequencesFor(watched.updates, second.id)).toEqual(logs.second);
      expect(watched.updates[0]).toMatchObject({ kind: 'SNAPSHOT', requestId: first.id });
      const cursors = watched.updates.filter((update) => update.kind === 'EVENT').map((update) => BigInt(update.cursor));
      expect(cursors.every((cursor, i) => i === 0 || cursor > cursors[i - 1]!)).toBe(true);
      expect(client.states).toContain('reconnecting');
    } finally {
      await client.close();
    }
  });
});

test('the feed resumed from a cursor replays what came after it, then goes on live', async () => {
  const client = trackerClient(proxy.url, 'ws', () => tokens.admin);
  const resumedClient = trackerClient(proxy.url, 'ws', () => tokens.admin);
  try {
    const studentId = 'resume-feed-cursor';
    const studentToken = await app.token({ sub: studentId, role: 'student', organization_id: 'resume-org' });
    const { id } = await submitRequest({ url: app.url, token: studentToken });
    const opening = collect(client.watchUpdates({ studentId }));
    const [snapshot] = await opening.waitForUpdates((updates) => updates.length >= 1, 'the snapshot');
    await client.close();
    await opening.ended;

    await reportStage(worker(), id, 'validation', 'IN_PROGRESS');
    const resumed = collect(resumedClient.watchUpdates({ studentId }, { after: snapshot!.cursor }));
    await reportStage(worker(), id, 'validation', 'COMPLETED');
    const log = await sequencesOf(id);
    await resumed.waitForUpdates((updates) => updates.length >= log.length - 1, 'every event after the snapshot');
    expect(resumed.updates.map((update) => update.sequence)).toEqual(log.slice(1));
    expect(resumed.updates.every((update) => update.kind === 'EVENT')).toBe(true);
  } finally {
    await Promise.all([client.close(), resumedClient.close()]);
  }
});
