/**
 * /metrics under many distinct URLs and operation names, in a real child
 * process as `npm start` runs it: labels stay bounded (the path without its
 * query, operation names from a bounded set), nothing from a query string
 * reaches a label, and the scrape and the process's memory stay small.
 * PGlite project only: it is about the HTTP layer, not the database.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { testDatabaseKind } from '../helpers/database.js';
import { freePort, spawnService, START_TIMEOUT_MS, type ServiceProcess } from '../helpers/service-process.js';

const SECRET = 'url-secret-token-5f3a9c';

/** Runs `count` requests, `concurrency` at a time. */
async function load(count: number, concurrency: number, send: (i: number) => Promise<Response>) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const response = await send(next++);
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const rssOf = async (pid: number) => Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/**
 * A full garbage collection in the service, through its inspector: without it
 * RSS mostly measures garbage not yet collected, not what the process keeps.
 */
async function collectGarbage(inspectorUrl: string) {
  const socket = new WebSocket(inspectorUrl);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  await new Promise<void>((resolve) => {
    socket.on('message', (data) => {
      if ((JSON.parse(String(data)) as { id?: number }).id === 1) resolve();
    });
    socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
  });
  socket.close();
}

describe.skipIf(testDatabaseKind() !== 'pglite')('/metrics cardinality', () => {
  let service: ServiceProcess;
  let url: string;
  let inspectorUrl: string;
  const urlRequest = (i: number) => fetch(`${url}/graphql?query=${encodeURIComponent('{ __typename }')}&n=${i}&access_token=${SECRET}`);
  const namedRequest = (i: number) =>
    fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `query Distinct${i} { __typename }` }),
    });

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // The inspector on a free loopback port, for collectGarbage().
    service = spawnService({ DATA_DIR: 'memory://', PORT: String(port), DEMO_DATA: 'false', NODE_OPTIONS: '--inspect=127.0.0.1:0' });
    await service.waitForOutput(/content request tracker ready/);
    inspectorUrl = /Debugger listening on (ws:\S+)/.exec(service.stderr())![1]!;
    // Warm up (JIT, pools, the first labels) before the baseline.
    await load(5_000, 10, (i) => (i % 2 ? urlRequest(-i) : namedRequest(-i)));
  }, START_TIMEOUT_MS + 60_000);
  afterAll(async () => {
    if (service && !service.hasExited()) {
      service.child.kill('SIGKILL');
      await service.exited;
    }
  });

  test('20,000 distinct URLs and 5,000 distinct operation names: /metrics < 1 MB, RSS grows < 30 MB, no query string in it', async () => {
    const pid = service.child.pid!;
    await collectGarbage(inspectorUrl);
    const rssBefore = await rssOf(pid);
    await load(20_000, 10, urlRequest);
    await load(5_000, 10, namedRequest);
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    await collectGarbage(inspectorUrl);
    const rssGrowth = (await rssOf(pid)) - rssBefore;

    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('?query');
    expect(text).toMatch(/^graphql_yoga_http_duration_count\{[^}]*url="\/graphql"[^}]*\} [1-9]/m);
    expect(Buffer.byteLength(text)).toBeLessThan(1_000_000);
    expect(rssGrowth).toBeLessThan(30 * 1024 * 1024);
  }, 300_000);
});
