/**
 * Clients that misbehave, against the service as a separate process (as
 * `npm start` runs it): a reader that stops reading until it is cut off, then
 * leaves; a subscribe completed or dropped before its first message; frames of
 * 90 MB; SIGTERM while a client reads nothing. The process must stay up (or
 * stop when told, within its grace period), its open-subscription count must
 * come back to what is really open, and its memory must come back down.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signToken, type TokenClaims } from '../../src/http/auth.js';
import { TEST_JWT_SECRET } from '../helpers/app.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
import { rawWs, type RawWs } from '../helpers/live.js';
import { exitWithin, freePort, graphqlAt, spawnService, waitUntilReady, type ServiceProcess } from '../helpers/service-process.js';
import { submitRequest } from '../helpers/requests.js';

type Service = ServiceProcess & { url: string };

const sign = (claims: TokenClaims) => signToken(new TextEncoder().encode(TEST_JWT_SECRET), claims);

let testDatabase: TestDatabase | undefined;
const services: Service[] = [];
const sockets: RawWs[] = [];

beforeAll(async () => {
  if (testDatabaseKind() === 'postgres') testDatabase = await createTestDatabase();
});
afterAll(async () => {
  for (const socket of sockets) socket.socket.terminate();
  for (const service of services) {
    if (!service.hasExited()) {
      service.child.kill('SIGKILL');
      await service.exited;
    }
  }
  await testDatabase?.close();
});

/** The service on this file's database (a fresh in-memory PGlite in the pglite project), ready. */
async function startService(env: Record<string, string> = {}): Promise<Service> {
  const port = await freePort();
  const database: Record<string, string> = testDatabase ? { DATABASE_URL: testDatabase.url! } : { DATA_DIR: 'memory://' };
  const spawned = spawnService({
    ...database,
    JWT_SECRET: TEST_JWT_SECRET,
    DEMO_DATA: 'false',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    METRICS_ROLLUP_INTERVAL_SECONDS: '0',
    RETENTION_DAYS: '0',
    ...env,
  });
  const service = Object.assign(spawned, { url: `http://127.0.0.1:${port}` });
  services.push(service);
  await waitUntilReady(service, service.url);
  return service;
}

async function metric(service: Service, name: string): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!match) throw new Error(`no ${name} in /metrics`);
  return Number(match[1]);
}

async function waitForMetric(service: Service, name: string, ok: (value: number) => boolean, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let value = NaN;
  for (;;) {
    if (service.hasExited()) throw new Error(`the service exited waiting for ${what}: ${service.describe()}`);
    value = await metric(service, name);
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${name} is ${value}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const graphql = (service: Service, token: string, query: string, variables: Record<string, unknown> = {}) =>
  graphqlAt(service.url, token, query, variables);

/** The process's resident memory, from the kernel. */
async function rssBytes(service: Service): Promise<number> {
  const status = await readFile(`/proc/${service.child.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

const LARGE_TEXT = 'x'.repeat(9_000);
const BATCH = 20; // the alias limit

let submitted = 0;
/** `count` new requests for the student (large ones), 20 to a document. */
async function submitMany(service: Service, adminToken: string, studentId: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    const fields = Array.from(
      { length: n },
      (_, i) =>
        `s${i}: submitContentRequest(input: { correlationId: "hostile-${++submitted}", topic: "Flood", studentQuery: $text, studentId: "${studentId}" }) { request { id } }`,
    );
    const data = await graphql(service, adminToken, `mutation ($text: String!) { ${fields.join('\n')} }`, { text: LARGE_TEXT });
    for (let i = 0; i < n; i++) ids.push(data[`s${i}`].request.id as string);
  }
  return ids;
}

/** `count` progress reports on one running stage, 10% and 90% in turn (each moves the request's progress: a new event), 20 to a document. */
async function reportMany(service: Service, workerToken: string, requestId: string, count: number) {
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    const fields = Array.from(
      { length: n },
      (_, i) =>
        `r${i}: reportStage(input: { requestId: "${requestId}", stage: "validation", status: IN_PROGRESS, progress: ${(done + i) % 2 ? 90 : 10} }) { id }`,
    );
    await graphql(service, workerToken, `mutation { ${fields.join('\n')} }`);
  }
}

// Large messages (about 180 KB: the request's 9,000-character query 20 times), so a
// reader that stops reading fills the socket buffers within a few dozen; and a
// small unread limit (LIVE_MAX_UNREAD_UPDATES), so a few dozen more cut it off.
const LARGE = Array.from({ length: 20 }, (_, i) => `r${i}: request { studentQuery }`).join(' ');
const FEED = `subscription { contentRequestUpdates { kind sequence ${LARGE} } }`;
const ONE = `subscription ($id: ID!) { contentRequestProgress(id: $id) { kind sequence ${LARGE} } }`;
// Only fields every subscriber shares (about 4 KB a message): over WebSocket its frames are written
// outside the per-subscription pipeline (live/shared-results.ts), and still count as unread until written.
const SHARED = `subscription ($id: ID!) { contentRequestProgress(id: $id) { kind sequence ${Array.from(
  { length: 20 },
  (_, i) => `e${i}: event { id sequence eventType oldStatus newStatus stage progressPercentage createdAt }`,
).join(' ')} } }`;
const UNREAD_LIMIT = '20';

describe('a reader that stops reading', () => {
  let service: Service;
  const tokens = { student: '', admin: '', worker: '' };
  beforeAll(async () => {
    service = await startService({ LIVE_MAX_UNREAD_UPDATES: UNREAD_LIMIT });
    tokens.student = await sign({ sub: 'slow-student', role: 'student', organization_id: 'slow-org' });
    tokens.admin = await sign({ sub: 'slow-admin', role: 'admin' });
    tokens.worker = await sign({ sub: 'slow-worker', role: 'worker' });
    await graphql(service, tokens.student, `{ viewer { id } }`); // the student exists
    await submitMany(service, tokens.admin, 'slow-student', 1); // the feed opens with its snapshot
  });

  /** A subscription whose reader stops reading, and the changes that pile up until the server cuts it off. */
  async function cutOffOverWebSocket(which: 'feed' | 'one' | 'one, shared', on: Service = service) {
    const service = on;
    const cutOffsBefore = await metric(service, 'tracker_live_cutoffs_total');
    const socket = await rawWs(service.url);
    sockets.push(socket);
    await socket.init({ authorization: `Bearer ${tokens.student}` });
    let requestId: string | undefined;
    if (which !== 'feed') [requestId] = await submitMany(service, tokens.admin, 'slow-student', 1);
    socket.subscribe('1', { feed: FEED, one: ONE, 'one, shared': SHARED }[which], requestId ? { id: requestId } : {});
    await socket.waitFor((m) => m.id === '1' && m.type === 'next', 'the first message');
    socket.pauseReading();
    // Small messages take more rounds to fill the socket buffers.
    const rounds = which === 'one, shared' ? 100 : 10;
    for (let round = 0; (await metric(service, 'tracker_live_cutoffs_total')) === cutOffsBefore; round++) {
      if (round >= rounds) throw new Error(`the server never cut the reader off: ${service.describe()}`);
      if (which === 'feed') await submitMany(service, tokens.admin, 'slow-student', 60);
      else {
        if (round === 0) await graphql(service, tokens.worker, `mutation { reportStage(input: { requestId: "${requestId}", stage: "validation", status: IN_PROGRESS }) { id } }`);
        await reportMany(service, tokens.worker, requestId!, 60);
      }
    }
    return socket;
  }

  test.each(['feed', 'one', 'one, shared'] as const)(
    'over WebSocket (%s): cut off, then the client reads its coded error and closes; the process stays up',
    async (which) => {
      const socket = await cutOffOverWebSocket(which);
      socket.resumeReading();
      const error = await socket.waitFor((m) => m.id === '1' && m.type === 'error', 'the cut-off error', 30_000);
      expect(error.payload[0].extensions.code).toBe('CONFLICT');
      expect(error.payload[0].message).toMatch(/more than 20 updates unread/);
      socket.socket.close();
      await socket.closed;
      await waitForMetric(service, 'tracker_live_subscriptions', (n) => n === 0, 'no open subscription');
      expect((await fetch(`${service.url}/health`)).status).toBe(200);
    },
  );

  test('over WebSocket: cut off while its opening snapshot is still going out, then the client drops the socket; the process stays up', async () => {
    const socket = await cutOffOverWebSocket('feed');
    socket.socket.terminate();
    await socket.closed;
    await waitForMetric(service, 'tracker_live_subscriptions', (n) => n === 0, 'no open subscription');
    expect(await metric(service, 'tracker_unhandled_rejections_total')).toBe(0);
    expect((await fetch(`${service.url}/health`)).status).toBe(200);
  });

  test('over SSE: cut off while its opening snapshot is still going out, then the client drops the connection; the process stays up', async () => {
    const cutOffsBefore = await metric(service, 'tracker_live_cutoffs_total');
    const stream = await openSse(service, tokens.student, FEED);
    await stream.firstData;
    stream.response.pause();
    for (let round = 0; (await metric(service, 'tracker_live_cutoffs_total')) === cutOffsBefore; round++) {
      if (round >= 10) throw new Error(`the server never cut the reader off: ${service.describe()}`);
      await submitMany(service, tokens.admin, 'slow-student', 60);
    }
    stream.request.destroy();
    await waitForMetric(service, 'tracker_live_subscriptions', (n) => n === 0, 'no open subscription');
    expect(await metric(service, 'tracker_unhandled_rejections_total')).toBe(0);
    expect((await fetch(`${service.url}/health`)).status).toBe(200);
  });
});

/** An SSE subscription on a raw HTTP request, so the test decides when (or whether) to read. */
async function openSse(service: Service, token: string, query: string, variables: Record<string, unknown> = {}) {
  const body = JSON.stringify({ query, variables });
  const request: ClientRequest = httpRequest(`${service.url}/graphql`, {
    method: 'POST',
    headers: {
      accept: 'text/event-stream',
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      authorization: `Bearer ${token}`,
    },
  });
  request.on('error', () => undefined); // destroyed on purpose
  request.end(body);
  const response = await new Promise<IncomingMessage>((resolve) => request.once('response', resolve));
  response.on('error', () => undefined);
  let text = '';
  const firstData = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('event: next')) {
        response.off('data', onData);
        resolve();
      }
    };
    response.on('data', onData);
  });
  return { request, response, firstData };
}

describe('subscriptions that end before they begin', () => {
  let service: Service;
  let token = '';
  beforeAll(async () => {
    service = await startService();
    token = await sign({ sub: 'quick-student', role: 'student', organization_id: 'quick-org' });
    await submitRequest({ url: service.url, token }, { correlationId: 'quick-1' });
  });

  test('subscribe then complete at once, 500 times on one socket: nothing stays subscribed', async () => {
    const socket = await rawWs(service.url);
    sockets.push(socket);
    await socket.init({ authorization: `Bearer ${token}` });
    for (let i = 0; i < 500; i++) {
      socket.subscribe(`q${i}`, FEED);
      socket.send({ id: `q${i}`, type: 'complete' });
    }
    await waitForMetric(service, 'tracker_live_subscriptions', (n) => n === 0, 'every completed subscription gone');
    // One that stays open on the same socket: counted, exactly once.
    socket.subscribe('kept', FEED);
    const first = await socket.waitFor((m) => m.id === 'kept', 'the kept subscription to start');
    expect(first.type, JSON.stringify(first)).toBe('next');
    await waitForMetric(service, 'tracker_live_subscriptions', (n) => n === 1, 'only the kept subscription open');
    socket.socket.close();
    await waitForMetric(service, 'tracker_live_subscriptions', (n) => n === 0, 'no open subscription');
  });

  test('subscribe then drop the socket at once, 100 times: nothing stays subscribed', async () => {
    for (let i = 0; i < 100; i++) {
      const socket = await rawWs(service.url);
      await socket.init({ authorization: `Bearer ${token}` });
      socket.subscribe('1', FEED);
      socket.socket.terminate();
      await socket.closed;
    }
    await waitForMetric(service, 'tracker_live_subscriptions', (n) => n === 0, 'no open subscription');
    expect((await fetch(`${service.url}/health`)).status).toBe(200);
  });
});

/**
 * One binary frame of `payload`, written on the TCP socket by hand: its header (and so its
 * length) first, then the payload. ws's own send masks the whole payload before writing
 * anything, which on a busy machine took longer than the server's wait for connection_init.
 * The mask key is zero, which leaves the payload as it is (any key is valid).
 */
function sendFrame(socket: RawWs, payload: Buffer): void {
  const header = Buffer.alloc(14);
  header[0] = 0x82; // final fragment, binary
  header[1] = 0x80 | 127; // masked, 64-bit length
  header.writeBigUInt64BE(BigInt(payload.length), 2);
  const tcp = (socket.socket as unknown as { _socket: Socket })._socket;
  tcp.write(header);
  tcp.write(payload, () => undefined);
}

describe('frames too large', () => {
  test('frames of 90 MB before connection_init are refused with 1009 and the memory comes back', async () => {
    const service = await startService();
    const before = await rssBytes(service);
    const payload = Buffer.alloc(90 * 1024 * 1024, 'a');
    for (let i = 0; i < 4; i++) {
      const socket = await rawWs(service.url);
      sendFrame(socket, payload);
      expect((await socket.closed).code).toBe(1009);
    }
    expect((await fetch(`${service.url}/health`)).status).toBe(200);
    const after = await rssBytes(service);
    expect(after - before).toBeLessThan(64 * 1024 * 1024);
    // 360 MB written through loopback by this process: tens of seconds on a busy machine.
  }, 120_000);

  test('a frame just over the configured limit is refused; one under it is read', async () => {
    const service = await startService({ WS_MAX_PAYLOAD_BYTES: '4096' });
    const token = await sign({ sub: 'frame-student', role: 'student', organization_id: 'frame-org' });
    const small = await rawWs(service.url);
    sockets.push(small);
    await small.init({ authorization: `Bearer ${token}`, padding: 'p'.repeat(3_000) });
    const big = await rawWs(service.url);
    big.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}`, padding: 'p'.repeat(5_000) } });
    expect((await big.closed).code).toBe(1009);
  });
});

describe('stopping', () => {
  test('SIGTERM with clients that stopped reading and were cut off (WebSocket feed and request, SSE): exit 0 after the grace period', async () => {
    const service = await startService({ SHUTDOWN_GRACE_SECONDS: '2', LIVE_MAX_UNREAD_UPDATES: UNREAD_LIMIT });
    const student = await sign({ sub: 'stuck-student', role: 'student', organization_id: 'stuck-org' });
    const admin = await sign({ sub: 'stuck-admin', role: 'admin' });
    const worker = await sign({ sub: 'stuck-worker', role: 'worker' });
    await graphql(service, student, `{ viewer { id } }`);
    const [requestId] = await submitMany(service, admin, 'stuck-student', 1);
    await graphql(service, worker, `mutation { reportStage(input: { requestId: "${requestId}", stage: "validation", status: IN_PROGRESS }) { id } }`);

    const feed = await rawWs(service.url);
    const one = await rawWs(service.url);
    sockets.push(feed, one);
    for (const socket of [feed, one]) await socket.init({ authorization: `Bearer ${student}` });
    feed.subscribe('1', FEED);
    one.subscribe('1', ONE, { id: requestId });
    const sse = await openSse(service, student, FEED);
    for (const socket of [feed, one]) await socket.waitFor((m) => m.id === '1' && m.type === 'next', 'the first message');
    await sse.firstData;
    feed.pauseReading();
    one.pauseReading();
    sse.response.pause();
    // Changes to both streams until all three readers are cut off.
    for (let round = 0; (await metric(service, 'tracker_live_cutoffs_total')) < 3; round++) {
      if (round >= 10) throw new Error('the server never cut the readers off');
      await submitMany(service, admin, 'stuck-student', 60);
      await reportMany(service, worker, requestId!, 60);
    }

    service.child.kill('SIGTERM');
    const exit = await exitWithin(service, 20_000);
    expect(exit.code, service.describe()).toBe(0);
    expect(service.stderr() + service.stdout()).not.toMatch(/unhandled/i);
    sse.request.destroy();
  }, 120_000);
});
