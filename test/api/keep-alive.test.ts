/**
 * Idle keep-alive connections: the service keeps one open for
 * HTTP_KEEPALIVE_SECONDS (65 by default), longer than the idle timeout of the
 * load balancer or client pool in front of it. With Node's default of 5 s a
 * client reusing a connection idle for about that long raced the server's
 * close and got ECONNRESET (seen with fetch's pool after a slow test step).
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

/** One raw HTTP/1.1 exchange on `socket`: the response head. */
function health(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const onData = (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(received);
      const whole = length ? received.length >= end + 4 + Number(length[1]) : received.endsWith('\r\n0\r\n\r\n');
      if (end >= 0 && whole) {
        socket.off('data', onData).off('error', reject);
        resolve(received.slice(0, end));
      }
    };
    socket.on('data', onData).once('error', reject);
    socket.write(`GET /health HTTP/1.1\r\nhost: ${new URL(app.url).host}\r\n\r\n`);
  });
}

test('the server announces its keep-alive timeout, and an idle connection outlives Node’s 5 s default', async () => {
  const { hostname, port } = new URL(app.url);
  const socket = connect(Number(port), hostname);
  let closedByServer = false;
  socket.once('end', () => (closedByServer = true));
  try {
    const first = await health(socket);
    expect(first).toMatch(/^HTTP\/1\.1 200/);
    expect(first).toMatch(/\r\nkeep-alive: timeout=65\r\n/i);

    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(closedByServer).toBe(false);
    expect(await health(socket)).toMatch(/^HTTP\/1\.1 200/);
  } finally {
    socket.destroy();
  }
});

test('HTTP_KEEPALIVE_SECONDS sets it', async () => {
  const other = await startTestApp({ env: { HTTP_KEEPALIVE_SECONDS: '2' } });
  try {
    const response = await fetch(`${other.url}/health`);
    await response.text();
    expect(response.headers.get('keep-alive')).toBe('timeout=2');
  } finally {
    await other.close();
  }
});
