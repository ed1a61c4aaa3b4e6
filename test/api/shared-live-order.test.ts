/**
 * Live events of a shared selection are written to a WebSocket directly
 * while the subscription's reader waits, and through the reader otherwise
 * (src/live/shared-results.ts, live-stream.ts sendDirectly). A burst of
 * events mixes the two; each subscriber must still get the snapshot first,
 * then every event once, in sequence order, with or without the ETA fields
 * (whose execution is asynchronous, so never sent directly), and a
 * subscription the client completed gets nothing more.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { sharedResultStats } from '../../src/live/shared-results.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { connectWs, PROGRESS, rawWs, type RawWs, type WsConnection } from '../helpers/live.js';
import { reportStage, submitRequest, type Client } from '../helpers/requests.js';
import { graphqlAt } from '../helpers/service-process.js';

let app: TestApp;
const tokens: Record<string, string> = {};
const sockets: WsConnection[] = [];
const raws: RawWs[] = [];
beforeAll(async () => {
  app = await startTestApp();
  tokens.ana = await app.token({ sub: 'order-ana', role: 'student', organization_id: 'order-org' });
  tokens.orgAdmin = await app.token({ sub: 'order-org-admin', role: 'org_admin', organization_id: 'order-org' });
  tokens.worker = await app.token({ sub: 'order-worker', role: 'worker' });
});
afterAll(async () => {
  for (const raw of raws) raw.socket.terminate();
  await Promise.all(sockets.map((socket) => socket.dispose()));
  await app?.close();
});

const as = (who: string): Client => ({ url: app.url, token: tokens[who]! });
const WITH_ETA = `subscription ($id: ID!) { contentRequestProgress(id: $id) { kind sequence status estimatedSecondsRemaining } }`;
const BURST = 20;

/** `count` progress reports in one document, 10% and 90% in turn (each moves the request's progress): as many events, as fast as the service commits them. */
async function burst(requestId: string, count: number) {
  const fields = Array.from(
    { length: count },
    (_, i) => `r${i}: reportStage(input: { requestId: "${requestId}", stage: "validation", status: IN_PROGRESS, progress: ${i % 2 ? 90 : 10} }) { id }`,
  );
  await graphqlAt(app.url, tokens.worker!, `mutation { ${fields.join('\n')} }`);
}

test('a burst of events reaches every shared WebSocket subscriber once each, in order, after its snapshot, with or without ETA fields', async () => {
  const { id } = await submitRequest(as('ana'));
  const socketsUsed = [connectWs(app.url, tokens.ana!), connectWs(app.url, tokens.ana!), connectWs(app.url, tokens.orgAdmin!)];
  sockets.push(...socketsUsed);
  const subscribers = socketsUsed.flatMap((socket) => [socket.subscribe(PROGRESS, { id }), socket.subscribe(PROGRESS, { id }), socket.subscribe(WITH_ETA, { id })]);
  await Promise.all(subscribers.map((stream) => stream.waitForPayloads(1)));
  await reportStage(as('worker'), id, 'validation', 'IN_PROGRESS');
  const sentDirectlyBefore = sharedResultStats.sentDirectly;

  for (let round = 0; round < 3; round++) await burst(id, BURST);
  // The request's last sequence, as a new subscriber's snapshot has it.
  const latest = socketsUsed[0]!.subscribe(PROGRESS, { id });
  const last = Number((await latest.waitForPayloads(1))[0]!.sequence);
  await latest.close();
  const payloads = await Promise.all(subscribers.map(async (stream) => {
    await waitFor(() => Number(stream.payloads().at(-1)?.sequence) >= last, `sequence ${last} on every subscriber`);
    return stream.payloads();
  }));
  await app.running.hub.caughtUp();

  for (const received of payloads) {
    expect(received[0]).toMatchObject({ kind: 'SNAPSHOT' });
    const sequences = received.slice(1).map((payload) => Number(payload.sequence));
    const first = Number(received[0]!.sequence) + 1;
    expect(sequences).toEqual(Array.from({ length: last - first + 1 }, (_, i) => first + i));
  }
  // The mix this test is about happened: some events were written directly.
  expect(sharedResultStats.sentDirectly).toBeGreaterThan(sentDirectlyBefore);
});

test('resuming while events keep coming: the replay (through the reader), then live events (written directly), in order, none twice', async () => {
  const { id } = await submitRequest(as('ana'));
  await reportStage(as('worker'), id, 'validation', 'IN_PROGRESS');
  for (let round = 0; round < 3; round++) await burst(id, BURST);
  const socket = connectWs(app.url, tokens.ana!);
  sockets.push(socket);
  // Each resumes from the start: a replay of every event, while more are committed.
  const resumed = [0, 1, 2, 3].map(() => socket.subscribe(PROGRESS, { id, after: 1 }));
  for (let round = 0; round < 3; round++) await burst(id, BURST);
  const latest = socket.subscribe(PROGRESS, { id });
  const last = Number((await latest.waitForPayloads(1))[0]!.sequence);
  await latest.close();
  for (const stream of resumed) {
    await waitFor(() => Number(stream.payloads().at(-1)?.sequence) >= last, `sequence ${last}`);
    expect(stream.payloads().map((payload) => Number(payload.sequence))).toEqual(Array.from({ length: last - 1 }, (_, i) => i + 2));
  }
});

test('a shared subscription the client completed gets no frame after it, while others on its socket go on', async () => {
  const { id } = await submitRequest(as('ana'));
  const raw = await rawWs(app.url);
  raws.push(raw);
  await raw.init({ authorization: `Bearer ${tokens.ana}` });
  raw.subscribe('gone', PROGRESS, { id });
  raw.subscribe('kept', PROGRESS, { id });
  for (const subscription of ['gone', 'kept']) await raw.waitFor((m) => m.id === subscription && m.type === 'next', `${subscription}'s snapshot`);
  await reportStage(as('worker'), id, 'validation', 'IN_PROGRESS');
  await raw.waitFor((m) => m.id === 'gone' && m.type === 'next' && m.payload.data.contentRequestProgress.kind === 'EVENT', 'the first event');

  raw.send({ id: 'gone', type: 'complete' });
  await waitFor(() => app.running.hub.subscriberCountOf(`request:${id.toLowerCase()}`) === 1, 'the completed one unsubscribed');
  const seen = raw.messages.length;
  await burst(id, BURST);
  // The request's last sequence, as a new subscription's snapshot has it; the other reaches it.
  raw.subscribe('latest', PROGRESS, { id });
  const last = (await raw.waitFor((m) => m.id === 'latest' && m.type === 'next', 'the latest snapshot')).payload.data.contentRequestProgress.sequence;
  await raw.waitFor((m) => m.id === 'kept' && m.type === 'next' && m.payload.data.contentRequestProgress.sequence === last, 'the last event on the other');
  expect(raw.messages.slice(seen).filter((m) => m.id === 'gone')).toEqual([]);
});
