/**
 * Two server processes on one PostgreSQL database, as two replicas behind a
 * load balancer: each is `npm start` (the entry file as a child process),
 * both start at once on an empty database and migrate it together; a change
 * made through either reaches subscribers on both, over SSE and WebSocket, in
 * order; SIGTERM stops each cleanly (exit 0) and completes its open
 * subscriptions rather than leaving them hanging.
 *
 * PGlite is one process per data folder, so this runs in the postgres project only.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signToken, type TokenClaims } from '../../src/http/auth.js';
import { STAGES, TEST_JWT_SECRET } from '../helpers/app.js';
import { createTestDatabase, testDatabaseKind, waitFor, type TestDatabase } from '../helpers/database.js';
import { exitWithin, freePort, ROOT, spawnService, START_TIMEOUT_MS, waitUntilReady, type ServiceProcess } from '../helpers/service-process.js';
import { connectWs, PROGRESS, UPDATES, type LiveMessage, type LiveSubscription, type WsConnection } from '../helpers/live.js';
import { reportStage, submitRequest } from '../helpers/requests.js';

type Service = ServiceProcess & { name: string; url: string };

function startService(name: string, port: number, databaseUrl: string): Service {
  const spawned = spawnService(
    { DATABASE_URL: databaseUrl, JWT_SECRET: TEST_JWT_SECRET, DEMO_DATA: 'false', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    name,
  );
  return Object.assign(spawned, { name, url: `http://127.0.0.1:${port}` });
}

const describeService = (service: Service) => service.describe();

const ready = (service: Service) => waitUntilReady(service, service.url);

type SseSubscription = LiveSubscription & {
  /** True once the server sent `event: complete` (a clean end), not just a closed connection. */
  completed(): boolean;
};

/**
 * GraphQL over SSE as a browser reads it. Like the shared helper, but it
 * tells a `complete` event from a connection that merely went away.
 */
async function subscribeSse(
  service: Service,
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<SseSubscription> {
  const field = /subscription[^{]*\{\s*(\w+)/.exec(query)![1]!;
  const messages: LiveMessage[] = [];
  let completed = false;
  let ended = false;
  let markEnded!: () => void;
  const endedPromise = new Promise<void>((resolve) => (markEnded = resolve));
  const abort = new AbortController();
  const response = await fetch(`${service.url}/graphql`, {
    method: 'POST',
    headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  expect(response.status).toBe(200);
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let boundary;
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          const lines = buffer.slice(0, boundary).split('\n');
          buffer = buffer.slice(boundary + 2);
          const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
          const data = lines
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trim())
            .join('\n');
          if (event === 'next' && data) messages.push(JSON.parse(data) as LiveMessage);
          if (event === 'complete') completed = true;
        }
      }
    } catch {
      // aborted by close(), or the connection dropped
    }
    ended = true;
    markEnded();
  })();
  const payloads = () => messages.filter((m) => m.data?.[field]).map((m) => m.data![field] as Record<string, any>);
  return {
    messages,
    payloads,
    ended: endedPromise,
    isEnded: () => ended,
    completed: () => completed,
    async waitForPayloads(count: number, timeoutMs = 10_000) {
      await waitFor(() => payloads().length >= count || messages.some((m) => m.errors), `${count} ${field} messages on ${service.name}`, timeoutMs);
      if (payloads().length < count) throw new Error(`subscription failed: ${JSON.stringify(messages.at(-1))}`);
      return payloads();
    },
    async close() {
      abort.abort();
      await endedPromise;
    },
  };
}

/** Resolves when `promise` does, failing after `ms` with `what`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}


type EventRow = { request_id: string; sequence: number; position: string; event_type: string; new_status: string; progress: number };

describe.skipIf(testDatabaseKind() !== 'postgres')('two server processes on one database', () => {
  let testDatabase: TestDatabase;
  let pool: pg.Pool;
  let a: Service;
  let b: Service;
  const sockets: WsConnection[] = [];
  const tokens = { student: '', admin: '', worker: '' };
  // The feeds stay open across the tests, until the processes stop.
  let feedOnA: LiveSubscription & { socket: WsConnection };
  let feedOnB: SseSubscription;

  const sign = (claims: TokenClaims) => signToken(new TextEncoder().encode(TEST_JWT_SECRET), claims);
  const wsSubscribe = (service: Service, token: string, query: string, variables: Record<string, unknown> = {}) => {
    const socket = connectWs(service.url, token);
    sockets.push(socket);
    return Object.assign(socket.subscribe(query, variables), { socket });
  };

  async function eventRows(where: string, params: unknown[]): Promise<EventRow[]> {
    const { rows } = await pool.query<EventRow>(
      `select request_id, sequence, feed_position::text as position, upper(event_type::text) as event_type,
              upper(new_status::text) as new_status, progress_percentage as progress
         from request_events where ${where} order by feed_position`,
      params,
    );
    return rows;
  }
  const listenerCount = async () =>
    Number(
      (
        await pool.query<{ count: string }>(
          `select count(*) from pg_stat_activity where datname = current_database() and application_name like '%:listener'`,
        )
      ).rows[0]!.count,
    );

  beforeAll(async () => {
    // An empty database: the two processes migrate it, at the same time.
    testDatabase = await createTestDatabase({ migrated: false });
    pool = new pg.Pool({ connectionString: testDatabase.url!, max: 2 });
    tokens.student = await sign({ sub: 'replica-student', role: 'student', organization_id: 'replica-org' });
    tokens.admin = await sign({ sub: 'replica-admin', role: 'admin' });
    tokens.worker = await sign({ sub: 'replica-worker', role: 'worker' });
  });

  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.dispose()));
    for (const service of [a, b]) {
      if (service && !service.hasExited()) {
        service.child.kill('SIGKILL');
        await service.exited;
      }
    }
    await pool?.end();
    await testDatabase?.close();
  });

  test(
    'both start at once on an empty database: one migration run, one listener each',
    async () => {
      const [portA, portB] = [await freePort(), await freePort()];
      a = startService('process A', portA, testDatabase.url!);
      b = startService('process B', portB, testDatabase.url!);
      await Promise.all([ready(a), ready(b)]);

      const journal = JSON.parse(await readFile(path.join(ROOT, 'drizzle/meta/_journal.json'), 'utf8')) as { entries: unknown[] };
      const applied = await pool.query<{ count: string }>('select count(*) from drizzle.__drizzle_migrations');
      expect(Number(applied.rows[0]!.count)).toBe(journal.entries.length);
      expect(await listenerCount()).toBe(2);
      for (const service of [a, b]) expect(service.stderr(), describeService(service)).toBe('');
    },
    START_TIMEOUT_MS + 10_000,
  );

  test('a request driven through every stage, half through each process: subscribers on both see every change, in order', async () => {
    // The feeds first, from the very beginning (cursor 0), so they hold the request's creation too.
    feedOnA = wsSubscribe(a, tokens.admin, UPDATES, { after: '0' });
    feedOnB = await subscribeSse(b, tokens.admin, UPDATES, { after: '0' });

    const submitted = await submitRequest(
      { url: a.url, token: tokens.student },
      { correlationId: 'replicas-1', topic: 'Volcanoes', studentQuery: 'Why do volcanoes erupt?' },
    );
    expect(submitted.status).toBe('PENDING');
    const id = submitted.id as string;

    const progressOnB = await subscribeSse(b, tokens.student, PROGRESS, { id });
    const progressOnA = wsSubscribe(a, tokens.student, PROGRESS, { id });
    for (const subscription of [progressOnB, progressOnA]) {
      const [snapshot] = await subscription.waitForPayloads(1);
      expect(snapshot).toMatchObject({ kind: 'SNAPSHOT', requestId: id, sequence: '1', status: 'PENDING' });
    }

    // Every report through the other process than the one before.
    const reports = STAGES.flatMap((stage) => [
      { stage, status: 'IN_PROGRESS' as const },
      { stage, status: 'IN_PROGRESS' as const, progress: 50 },
      { stage, status: 'COMPLETED' as const },
    ]);
    for (const [i, { stage, status, progress }] of reports.entries()) {
      await reportStage({ url: (i % 2 === 0 ? a : b).url, token: tokens.worker }, id, stage, status, progress);
    }

    // The request completed: its progress streams end, on both processes.
    await within(Promise.all([progressOnA.ended, progressOnB.ended]), 10_000, 'the progress streams to end with the request');
    const log = await eventRows('request_id = $1', [id]);
    expect(log.map((e) => e.sequence)).toEqual(log.map((_, i) => i + 1));
    expect(log.at(-1)).toMatchObject({ event_type: 'COMPLETED', new_status: 'COMPLETED', progress: 100 });

    const asEvent = (p: Record<string, any>) => ({
      sequence: Number(p.sequence),
      position: p.cursor,
      event_type: p.event.eventType,
      new_status: p.status,
      progress: p.progressPercentage,
    });
    const asRow = (r: EventRow) => ({ sequence: r.sequence, position: r.position, event_type: r.event_type, new_status: r.new_status, progress: r.progress });
    for (const subscription of [progressOnA, progressOnB]) {
      expect(subscription.messages.filter((m) => m.errors)).toEqual([]);
      const [snapshot, ...rest] = subscription.payloads();
      expect(snapshot!.kind).toBe('SNAPSHOT');
      expect(rest.map(asEvent)).toEqual(log.slice(1).map(asRow));
    }
    expect(progressOnB.completed()).toBe(true);

    // The feeds: every event since position 0 (this request's, creation included), in commit order, once.
    for (const feed of [feedOnA, feedOnB]) {
      await waitFor(() => feed.payloads().some((p) => p.cursor === log.at(-1)!.position), 'the feed to reach the last event', 10_000);
      expect(feed.messages.filter((m) => m.errors)).toEqual([]);
      expect(feed.payloads().every((p) => p.kind === 'EVENT' && p.requestId === id)).toBe(true);
      expect(feed.payloads().map(asEvent)).toEqual(log.map(asRow));
      expect(feed.isEnded()).toBe(false);
    }
  });

  test('SIGTERM to both: open subscriptions complete (SSE and WebSocket), and each process exits 0', async () => {
    // One more request in flight, followed on each process over the other transport.
    const { id } = await submitRequest(
      { url: b.url, token: tokens.student },
      { correlationId: 'replicas-2', topic: 'Glaciers', studentQuery: 'How do glaciers move?' },
    );
    await reportStage({ url: a.url, token: tokens.worker }, id, 'validation', 'IN_PROGRESS');
    const progressOnA = await subscribeSse(a, tokens.student, PROGRESS, { id });
    const progressOnB = wsSubscribe(b, tokens.student, PROGRESS, { id });
    await progressOnA.waitForPayloads(1);
    await progressOnB.waitForPayloads(1);
    for (const feed of [feedOnA, feedOnB]) {
      await waitFor(() => feed.payloads().some((p) => p.requestId === id && p.status === 'VALIDATING'), 'the feed to show the new request', 10_000);
    }
    const open = { progressOnA, progressOnB, feedOnA, feedOnB };
    for (const [name, subscription] of Object.entries(open)) expect(subscription.isEnded(), name).toBe(false);

    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    const [exitA, exitB] = await Promise.all([exitWithin(a, 10_000), exitWithin(b, 10_000)]);
    for (const [service, exit] of [[a, exitA], [b, exitB]] as const) {
      expect({ code: exit.code, signal: exit.signal }, describeService(service)).toEqual({ code: 0, signal: null });
      expect(exit.elapsedMs).toBeLessThan(5_000);
      expect(service.stderr(), describeService(service)).toBe('');
    }

    // Every open subscription ended: the server completed it, it was not dropped.
    await within(Promise.all(Object.values(open).map((subscription) => subscription.ended)), 5_000, 'every subscription to end');
    expect(progressOnA.completed()).toBe(true);
    expect(feedOnB.completed()).toBe(true);
    // graphql-ws: `complete` (no error) for each operation, then the socket closed as the server went away.
    expect(progressOnB.messages.filter((m) => m.errors)).toEqual([]);
    expect(feedOnA.messages.filter((m) => m.errors)).toEqual([]);
    for (const subscription of [progressOnB, feedOnA]) {
      expect((await within(subscription.socket.closed, 5_000, 'the socket to close')).code).toBe(1001); // Going Away
    }
    // Both listeners are gone with their processes.
    await expect.poll(listenerCount, { timeout: 5_000 }).toBe(0);
  });
});
