/**
 * Subscription clients as a browser or phone would use them: GraphQL over
 * SSE (a streaming fetch, read as text/event-stream) and GraphQL over
 * WebSocket (graphql-ws's own client on the `ws` socket).
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { waitFor } from './database.js';

export type LiveMessage = { data?: Record<string, any> | null; errors?: { message: string; extensions?: Record<string, any> }[] };

export type LiveSubscription = {
  messages: LiveMessage[];
  /** The subscription field's payload of each message with data. */
  payloads(): Record<string, any>[];
  /** Resolves when the server ended the stream (complete, error or close). */
  ended: Promise<void>;
  isEnded(): boolean;
  /** True when the server completed the stream (SSE `complete`, graphql-ws `complete`), not when it broke off. */
  completed(): boolean;
  waitForPayloads(count: number, timeoutMs?: number): Promise<Record<string, any>[]>;
  close(): Promise<void>;
};

function subscriptionState(field: string) {
  const messages: LiveMessage[] = [];
  let ended = false;
  let completed = false;
  let markEnded!: () => void;
  const endedPromise = new Promise<void>((resolve) => {
    markEnded = () => {
      ended = true;
      resolve();
    };
  });
  const payloads = () => messages.filter((m) => m.data?.[field]).map((m) => m.data![field]);
  return {
    messages,
    markEnded,
    markCompleted: () => {
      completed = true;
    },
    common: {
      completed: () => completed,
      messages,
      payloads,
      ended: endedPromise,
      isEnded: () => ended,
      async waitForPayloads(count: number, timeoutMs = 10_000) {
        await waitFor(
          () => payloads().length >= count || messages.some((m) => m.errors),
          `${count} ${field} messages (have ${payloads().length}: ${JSON.stringify(messages.slice(-2))})`,
          timeoutMs,
        );
        if (payloads().length < count) throw new Error(`subscription failed: ${JSON.stringify(messages.at(-1))}`);
        return payloads();
      },
    },
  };
}

/** GraphQL over SSE: one POST with Accept: text/event-stream, read as it arrives. */
export async function subscribeSse(
  url: string,
  token: string | null,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<LiveSubscription & { status: number }> {
  const field = fieldName(query);
  const state = subscriptionState(field);
  const abort = new AbortController();
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      accept: 'text/event-stream',
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let boundary;
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          const lines = block.split('\n');
          const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
          const data = lines
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trim())
            .join('\n');
          if (event === 'next' && data) state.messages.push(JSON.parse(data) as LiveMessage);
          if (event === 'complete') {
            state.markCompleted();
            state.markEnded();
          }
        }
      }
    } catch {
      // aborted by close(), or the connection dropped
    }
    state.markEnded();
  })();
  return {
    ...state.common,
    status: response.status,
    async close() {
      abort.abort();
      await state.common.ended;
    },
  };
}

export type WsConnection = {
  client: Client;
  /** The close event's code and reason, once the socket closed. */
  closed: Promise<{ code: number; reason: string }>;
  subscribe(query: string, variables?: Record<string, unknown>): LiveSubscription;
  dispose(): Promise<void>;
};

/** GraphQL over WebSocket (graphql-ws), the token in connection_init as the browser client sends it. */
export function connectWs(url: string, token: string | null): WsConnection {
  let resolveClosed!: (value: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (resolveClosed = resolve));
  const client = createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    // The socket's end is reported through `closed`; the default would print it.
    onNonLazyError: () => undefined,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        resolveClosed({ code, reason: String(reason) });
      },
    },
  });
  return {
    client,
    closed,
    subscribe(query, variables = {}) {
      const field = fieldName(query);
      const state = subscriptionState(field);
      const unsubscribe = client.subscribe(
        { query, variables },
        {
          next: (message) => void state.messages.push(message as LiveMessage),
          error: (error) => {
            const errors = Array.isArray(error) ? error : [{ message: String((error as Error).message ?? error) }];
            state.messages.push({ errors } as LiveMessage);
            state.markEnded();
          },
          complete: () => {
            state.markCompleted();
            state.markEnded();
          },
        },
      );
      return {
        ...state.common,
        async close() {
          unsubscribe();
          state.markEnded();
        },
      };
    },
    async dispose() {
      await client.dispose();
    },
  };
}

function fieldName(query: string): string {
  const match = /subscription[^{]*\{\s*(\w+)/.exec(query);
  if (!match) throw new Error(`not a subscription: ${query}`);
  return match[1]!;
}

export const PROGRESS = `subscription ($id: ID!, $after: BigInt) {
  contentRequestProgress(id: $id, afterSequence: $after) {
    kind cursor requestId sequence status stage progressPercentage
    event { id sequence eventType oldStatus newStatus stage progressPercentage createdAt }
  }
}`;

export const UPDATES = `subscription ($filter: ContentRequestUpdatesFilter, $after: String) {
  contentRequestUpdates(filter: $filter, after: $after) {
    kind cursor requestId sequence status stage progressPercentage
    event { eventType }
  }
}`;

export type RawWsMessage = { id?: string; type: string; payload?: any };

/**
 * The graphql-ws protocol spoken by hand on a `ws` socket, for what a real
 * client library never does: stop reading, complete before the first
 * message, send odd `connection_init` payloads, drop the socket mid-subscribe.
 */
export type RawWs = {
  socket: WebSocket;
  messages: RawWsMessage[];
  closed: Promise<{ code: number; reason: string }>;
  send(message: RawWsMessage): void;
  /** Sends connection_init and resolves on connection_ack (rejects if the socket closes first). */
  init(payload?: Record<string, unknown>): Promise<void>;
  subscribe(id: string, query: string, variables?: Record<string, unknown>): void;
  /** Stops reading from the socket: what the server sends piles up in its buffers. */
  pauseReading(): void;
  resumeReading(): void;
  /** Resolves with the first received message that matches. */
  waitFor(match: (message: RawWsMessage) => boolean, what: string, timeoutMs?: number): Promise<RawWsMessage>;
};

export function rawWs(url: string): Promise<RawWs> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const messages: RawWsMessage[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data)) as RawWsMessage));
  socket.on('error', () => undefined); // reported through `closed`
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  const raw: RawWs = {
    socket,
    messages,
    closed,
    send: (message) => socket.send(JSON.stringify(message)),
    async init(payload = {}) {
      raw.send({ type: 'connection_init', payload });
      await raw.waitFor((m) => m.type === 'connection_ack', 'connection_ack');
    },
    subscribe: (id, query, variables = {}) => raw.send({ id, type: 'subscribe', payload: { query, variables } }),
    pauseReading: () => (socket as unknown as { _socket: { pause(): void } })._socket.pause(),
    resumeReading: () => (socket as unknown as { _socket: { resume(): void } })._socket.resume(),
    async waitFor(match, what, timeoutMs = 10_000) {
      await waitFor(() => messages.some(match) || isClosed, what, timeoutMs);
      const found = messages.find(match);
      if (!found) throw new Error(`the socket closed before ${what}: ${JSON.stringify(await closed)}`);
      return found;
    },
  };
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(raw));
    socket.once('error', reject);
  });
}
