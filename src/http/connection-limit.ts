/**
 * A cap on the connections open at once (HTTP, SSE and WebSocket together).
 * Each costs memory and a file descriptor before it has sent a byte or a
 * token, and Node closes a silent one only after its header timeout (60 s):
 * without a cap, a client opening connections faster than that grows the
 * process without bound. One past the cap gets a 503 with a coded error and
 * Retry-After and is closed before anything it sends is read.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';

// How long a refused client should wait: connections come and go within seconds.
const RETRY_AFTER_SECONDS = 1;

function refusal(max: number): Buffer {
  const body = JSON.stringify({
    errors: [
      {
        message: `the server has ${max} connections open, the most it takes: retry shortly`,
        extensions: { code: 'SERVICE_UNAVAILABLE', retryable: true, limit: max },
      },
    ],
  });
  return Buffer.from(
    'HTTP/1.1 503 Service Unavailable\r\n' +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `retry-after: ${RETRY_AFTER_SECONDS}\r\n` +
      'x-content-type-options: nosniff\r\n' +
      'connection: close\r\n\r\n' +
      body,
  );
}

export function limitConnections(server: Server, max: number, registry: Registry): void {
  const answer = refusal(max);
  let open = 0;
  const refused = new Counter({
    name: 'tracker_http_connections_refused_total',
    help: 'Connections refused with 503 because HTTP_MAX_CONNECTIONS were open',
    registers: [registry],
  });
  new Gauge({
    name: 'tracker_http_connections_open',
    help: 'Connections open on the API port (HTTP, SSE and WebSocket)',
    registers: [registry],
    collect() {
      this.set(open);
    },
  });
  // Before node:http's own listener: a refused socket is answered and destroyed before its parser reads anything.
  server.prependListener('connection', (socket: Socket) => {
    if (open >= max) {
      refused.inc();
      socket.on('error', () => undefined); // the client may already be gone
      // The answer is written at once (a fresh socket's buffer is empty); destroyed when it is, before a read.
      socket.end(answer, () => socket.destroy());
      return;
    }
    open++;
    socket.once('close', () => open--);
  });
}
