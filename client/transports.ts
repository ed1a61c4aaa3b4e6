/**
 * One subscription over one connection, opened with one token: graphql-ws
 * over WebSocket, or GraphQL over SSE as the service serves it (a POST read as
 * text/event-stream, one connection per operation). Reconnecting and resuming
 * are the caller's (watch.ts): a stream here ends once, and says how.
 */
import { createClient } from 'graphql-ws/client';
import { connectionLost, fromGraphQLErrors, TrackerError, type GraphQLErrorLike } from './errors.js';

export type Operation = { query: string; variables: Record<string, unknown> };
export type ExecutionResultLike = { data?: Record<string, unknown> | null; errors?: GraphQLErrorLike[] };

export type StreamHandlers = {
  /** The service accepted the connection (and the token). */
  opened(): void;
  next(result: ExecutionResultLike): void;
};

/**
 * Resolves when the server completes the stream or `signal` aborts it;
 * rejects with a TrackerError when the server refuses it or the connection drops.
 */
export type OpenStream = (operation: Operation, token: string, handlers: StreamHandlers, signal: AbortSignal) => Promise<void>;

// graphql-ws closes a socket whose token the service refused or saw expire with 4403.
const FORBIDDEN_CLOSE = 4403;

export function webSocketStream(url: string, webSocketImpl?: unknown): OpenStream {
  const socketUrl = url.replace(/^http/, 'ws');
  return (operation, token, handlers, signal) =>
    new Promise<void>((resolve, reject) => {
      // A socket per stream: a refused or expired token is that socket's alone.
      const client = createClient({
        url: socketUrl,
        connectionParams: { authorization: `Bearer ${token}` },
        retryAttempts: 0,
        ...(webSocketImpl ? { webSocketImpl } : {}),
        on: { connected: () => handlers.opened() },
      });
      let ended = false;
      const end = (error?: TrackerError) => {
        if (ended) return;
        ended = true;
        signal.removeEventListener('abort', onAbort);
        unsubscribe();
        // dispose() waits for a connection still being made, and rejects when the service refuses it: already handled above.
        void Promise.resolve(client.dispose()).catch(() => undefined);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => end();
      const unsubscribe = client.subscribe(operation, {
        next: (result) => handlers.next(result as ExecutionResultLike),
        error: (error) => end(webSocketError(error)),
        complete: () => end(),
      });
      signal.addEventListener('abort', onAbort);
      if (signal.aborted) onAbort();
    });
}

function webSocketError(error: unknown): TrackerError {
  if (Array.isArray(error)) return fromGraphQLErrors(error as GraphQLErrorLike[]);
  const close = error as { code?: unknown; reason?: unknown } | null;
  if (close?.code === FORBIDDEN_CLOSE) return new TrackerError('UNAUTHENTICATED', String(close.reason ?? 'Forbidden'));
  return connectionLost(error);
}

export function sseStream(url: string, fetchImpl: typeof fetch): OpenStream {
  return async (operation, token, handlers, signal) => {
    let response: Response;
    try {
      response = await fetchImpl(url, {
        method: 'POST',
        headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(operation),
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      throw connectionLost(error);
    }
    if (!response.ok || !response.body || !response.headers.get('content-type')?.includes('text/event-stream')) {
      throw await refusal(response);
    }
    handlers.opened();
    try {
      for await (const event of serverSentEvents(response.body)) {
        if (event.type === 'next') handlers.next(JSON.parse(event.data) as ExecutionResultLike);
        if (event.type === 'complete') return;
      }
    } catch (error) {
      if (signal.aborted) return;
      throw connectionLost(error);
    }
    if (!signal.aborted) throw connectionLost(new Error('the event stream ended without completing'));
  };
}

/** Why the service answered a stream with something else than an event stream. */
async function refusal(response: Response): Promise<TrackerError> {
  const body = (await response.json().catch(() => null)) as { errors?: GraphQLErrorLike[] } | null;
  if (body?.errors?.length) return fromGraphQLErrors(body.errors);
  if (response.status >= 500) return connectionLost(new Error(`HTTP ${response.status}`));
  return new TrackerError('HTTP_ERROR', `the service answered HTTP ${response.status}`);
}

/** The longest single event accepted from a stream (the service's updates are a few KiB). */
const MAX_EVENT_BYTES = 1024 * 1024;

/** The events of a text/event-stream body (comments and keep-alives skipped), read with a reader as every browser can. */
export async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ type: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      // Line ends normalised on the whole buffer: a CRLF split across two chunks is still one line end.
      buffer = buffer.endsWith('\r') ? buffer.slice(0, -1).replace(/\r\n?/g, '\n') + '\r' : buffer.replace(/\r\n?/g, '\n');
      let boundary;
      while ((boundary = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        let type = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') type = value;
          else if (field === 'data') data.push(value);
        }
        if (data.length || type !== 'message') yield { type, data: data.join('\n') };
      }
      // A server that never ends an event would grow this without bound: treat it as a broken stream.
      if (buffer.length > MAX_EVENT_BYTES) throw new Error(`an event over ${MAX_EVENT_BYTES} bytes`);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
