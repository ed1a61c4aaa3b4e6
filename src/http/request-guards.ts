/**
 * What every request passes before any route reads it: a Host header that
 * makes a URL, and a body within bounds.
 *
 * - Host: one that makes no URL (`a b`, `x:99999`) was a 500 from either
 *   path, yoga's adapter answering its stack trace and the direct path
 *   logging the header. It is refused 400, without an echo. (A WebSocket
 *   upgrade builds no URL from it and is served as any other.)
 * - Body: yoga reads a body whole into memory, whatever its size. A body
 *   declared larger than the limit is answered 413, one of unknown length
 *   (chunked: its size is known only once read) 411 Length Required;
 *   requests without a body (GET, SSE over GET, the WebSocket upgrade) are
 *   untouched. A declared length is all the parser reads as the body, so it
 *   cannot be exceeded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { rememberLast } from './remember-last.js';
import type { RequestHandler } from './requests-in-flight.js';

function refuse(response: ServerResponse, status: number, message: string, extensions: Record<string, unknown> = {}): void {
  const body = JSON.stringify({ errors: [{ message, extensions: { code: 'BAD_REQUEST', ...extensions } }] });
  // The unread body is not drained: the connection closes with the answer.
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
    'x-content-type-options': 'nosniff',
  });
  response.end(body);
}

export function guardRequests(handler: RequestHandler, limits: { maxBodyBytes: number }): RequestHandler {
  const { maxBodyBytes } = limits;
  const parses = rememberLast((url) => URL.canParse(url));
  return (request: IncomingMessage, response: ServerResponse) => {
    if (!parses(`http://${request.headers.host ?? 'localhost'}${request.url}`)) {
      return refuse(response, 400, 'the Host header is not a host name');
    }
    const declared = request.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBodyBytes) {
      return refuse(response, 413, `the request body is larger than ${maxBodyBytes} bytes`, { limit: maxBodyBytes });
    }
    if (declared === undefined && request.headers['transfer-encoding'] !== undefined) {
      return refuse(response, 411, `send the request body with a Content-Length (at most ${maxBodyBytes} bytes)`, { limit: maxBodyBytes });
    }
    return handler(request, response);
  };
}
