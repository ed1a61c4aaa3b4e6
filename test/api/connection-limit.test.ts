/**
 * Connections open at once are capped (HTTP_MAX_CONNECTIONS): each costs
 * memory and a file descriptor before it sends a byte, so a client opening
 * connections faster than Node's header timeout closes them (60 s) would grow
 * the process without bound. One past the cap is answered 503 with a coded
 * error and Retry-After, then closed, and never reaches a handler; WebSocket
 * upgrades count and are refused alike. Freed places are taken again.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../helpers/app.js';

const CAP = 5;

describe('the connection cap', () => {
  let app: TestApp;
  let port: number;
  const open: Socket[] = [];
  beforeAll(async () => {
    // /metrics on a port of its own: its requests are not connections to the capped server.
    app = await startTestApp({ env: { HTTP_MAX_CONNECTIONS: String(CAP), METRICS_PORT: '0' } });
    port = Number(new URL(app.url).port);
  });
  afterAll(async () => {
    for (const socket of open) socket.destroy();
    await app?.close();
  });

  /** A raw connection; resolves once connected. */
  const opened = () =>
    new Promise<Socket>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(socket)).once('error', reject);
    });
  /** Everything the server sends until it closes the connection. */
  const untilClosed = (socket: Socket) =>
    new Promise<string>((resolve) => {
      let received = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
      socket.on('error', () => undefined);
      socket.once('close', () => resolve(received));
    });
  const metric = async (name: string) => {
    const text = await (await fetch(app.running.metricsUrl)).text();
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1]);
  };

  test('past the cap: 503, SERVICE_UNAVAILABLE with retryable and Retry-After, closed; the request is never handled', async () => {
    const refusedBefore = await metric('tracker_http_connections_refused_total');
    for (let i = 0; i < CAP; i++) open.push(await opened());
    const extra = await opened();
    const answer = untilClosed(extra);
    // A mutation sent anyway: it must not run.
    const body = JSON.stringify({ query: '{ viewer { id } }' });
    extra.write(`POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const received = await answer;
    expect(received).toMatch(/^HTTP\/1\.1 503 /);
    expect(received).toMatch(/^retry-after: \d+\r$/im);
    expect(received).toMatch(/^connection: close\r$/im);
    const json = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4));
    expect(json.errors[0].extensions).toEqual({ code: 'SERVICE_UNAVAILABLE', retryable: true, limit: CAP });
    expect(received).not.toContain('viewer');

    // A WebSocket upgrade is refused the same way.
    const socket = new WebSocket(`${app.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const status = await new Promise<number>((resolve) => {
      socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.once('open', () => resolve(101));
      socket.once('error', () => undefined);
    });
    socket.terminate();
    expect(status).toBe(503);

    // A place freed is taken again.
    expect(await metric('tracker_http_connections_refused_total')).toBe(refusedBefore + 2);
    open.pop()!.destroy();
    while ((await metric('tracker_http_connections_open')) >= CAP) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await fetch(`${app.url}/health`)).status).toBe(200);
  });
});
