/**
 * Request bodies bounded before anything reads them: yoga reads a body whole
 * into memory, whatever its size. A body declared larger than the limit is
 * answered 413, one of unknown length (chunked: its size is known only once
 * read) 411 Length Required; requests without a body (GET, SSE over GET,
 * the WebSocket upgrade) are untouched. A declared length is all the parser
 * reads as the body, so it cannot be exceeded.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

function refuse(response: ServerResponse, status: number, message: string, limit: number): void {
  const body = JSON.stringify({ errors: [{ message, extensions: { code: 'BAD_REQUEST', limit } }] });
  // The unread body is not drained: the connection closes with the answer.
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', connection: 'close', 'x-content-type-options': 'nosniff' });
  response.end(body);
}

export function limitRequestBodies(handler: RequestListener, maxBytes: number): RequestListener {
  return (request: IncomingMessage, response: ServerResponse) => {
    const declared = request.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBytes) {
      return refuse(response, 413, `the request body is larger than ${maxBytes} bytes`, maxBytes);
    }
    if (declared === undefined && request.headers['transfer-encoding'] !== undefined) {
      return refuse(response, 411, `send the request body with a Content-Length (at most ${maxBytes} bytes)`, maxBytes);
    }
    return handler(request, response);
  };
}
