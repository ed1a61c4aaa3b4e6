/**
 * A typed client for frontends: the service's two live subscriptions as async
 * iterables that reconnect and resume by themselves (over graphql-ws, or SSE),
 * and plain queries and mutations over HTTP. It runs in browsers and in Node
 * (pass `webSocketImpl` from 'ws'); it imports nothing from the server.
 *
 *   const tracker = createTrackerClient({ url: 'http://127.0.0.1:4000/graphql', getToken: () => token });
 *   for await (const update of tracker.watchRequest(id)) render(update);
 */
import { fromGraphQLErrors, TrackerError, type GraphQLErrorLike } from './errors.js';
import { sseStream, webSocketStream } from './transports.js';
import {
  DEFAULT_MAX_BUFFERED_UPDATES,
  watch,
  type Resumable,
  type RetryOptions,
  type WatchDependencies,
  type WatchState,
} from './watch.js';
import { requestProgress, requestUpdates, type RequestUpdate, type UpdateExtras, type UpdatesFilter } from './updates.js';

export { TrackerError, type TrackerErrorCode } from './errors.js';
export type { RequestUpdate, UpdatesFilter } from './updates.js';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'closed';

export type TrackerClientOptions = {
  /** The service's GraphQL URL, http(s)://host:port/graphql. */
  url: string;
  /** Asked at every (re)connect and query, so a token that expired is replaced by a fresh one. */
  getToken: () => string | Promise<string>;
  /** 'ws' (graphql-ws, the default) or 'sse' (GraphQL over SSE, a connection per subscription). */
  transport?: 'ws' | 'sse';
  /** The worst state of the open watches: reconnecting over connecting over live; closed after close(). */
  onStateChange?: (state: ConnectionState) => void;
  /** Backoff between reconnections, with jitter (defaults 500 ms doubling up to 15 s). */
  retry?: RetryOptions;
  /**
   * Updates held per watch for a caller that has not taken them (default 1,000):
   * past it the watch reconnects and resumes where the caller is, so memory stays bounded and nothing is lost.
   */
  maxBufferedUpdates?: number;
  /** A WebSocket class where there is no global one (Node: `import WebSocket from 'ws'`). */
  webSocketImpl?: unknown;
  fetchImpl?: typeof fetch;
};

/** `signal` ends the watch when it aborts, as breaking out of the loop does. */
export type WatchOptions = { signal?: AbortSignal };

export type TrackerClient = {
  /** One request: a snapshot (or, from `afterSequence`, the events after it), then every change; ends when the request completes or is cancelled. */
  watchRequest(id: string, options?: WatchOptions & { afterSequence?: number }): AsyncIterableIterator<RequestUpdate>;
  /**
   * Every request in reach (narrowed by `filter`): snapshots (or, from `after`, every change since that cursor), then every change.
   * `withRequest` adds each request's topic and error to its updates, `withEta` its estimated completion time.
   */
  watchUpdates(filter?: UpdatesFilter, options?: WatchOptions & UpdateExtras & { after?: string }): AsyncIterableIterator<RequestUpdate>;
  /** A query or mutation over HTTP with the token; throws a TrackerError carrying the server's code. */
  query<T = unknown>(document: string, variables?: Record<string, unknown>): Promise<T>;
  /** Ends every watch and its connection. */
  close(): Promise<void>;
};

export function createTrackerClient(options: TrackerClientOptions): TrackerClient {
  const fetchImpl = options.fetchImpl ?? globalThis.fetch.bind(globalThis);
  const openStream =
    options.transport === 'sse' ? sseStream(options.url, fetchImpl) : webSocketStream(options.url, options.webSocketImpl);
  const closing = new AbortController();
  const states = connectionStates(options.onStateChange);
  // The watches not yet ended, for close() to end and wait for.
  const running = new Map<symbol, AsyncIterableIterator<RequestUpdate>>();

  function start(resumable: Resumable<RequestUpdate>, { signal }: WatchOptions): AsyncIterableIterator<RequestUpdate> {
    const id = Symbol('watch');
    const deps: WatchDependencies = {
      openStream,
      getToken: options.getToken,
      retry: options.retry ?? {},
      closing: signal ? AbortSignal.any([closing.signal, signal]) : closing.signal,
      maxBufferedUpdates: options.maxBufferedUpdates ?? DEFAULT_MAX_BUFFERED_UPDATES,
      onState: (state) => {
        if (state === 'ended') running.delete(id);
        states.set(id, state);
      },
    };
    const iterator = watch(deps, resumable);
    running.set(id, iterator);
    return iterator;
  }

  return {
    watchRequest: (id, watchOptions = {}) => start(requestProgress(id, watchOptions.afterSequence), watchOptions),
    watchUpdates: (filter = {}, watchOptions = {}) =>
      start(requestUpdates(filter, watchOptions.after, watchOptions), watchOptions),

    async query<T>(document: string, variables: Record<string, unknown> = {}): Promise<T> {
      const token = await options.getToken();
      const response = await fetchImpl(options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          authorization: `Bearer ${token}`,
        },
        body: JSON.stringify({ query: document, variables }),
      });
      const body = (await response.json().catch(() => null)) as { data?: T; errors?: GraphQLErrorLike[] } | null;
      if (body?.errors?.length) throw fromGraphQLErrors(body.errors);
      if (!response.ok || !body || body.data === undefined) {
        throw new TrackerError('HTTP_ERROR', `the service answered HTTP ${response.status}`);
      }
      return body.data;
    },

    async close() {
      closing.abort();
      // A watch that has just ended with an error may reject return(): it is over either way.
      await Promise.all([...running.values()].map((iterator) => iterator.return?.().catch(() => undefined)));
      running.clear();
      states.close();
    },
  };
}

/** The client's state from its watches' states, reported when it changes. */
function connectionStates(onStateChange: TrackerClientOptions['onStateChange']) {
  const byWatch = new Map<symbol, WatchState>();
  let reported: ConnectionState | undefined;
  const report = (state: ConnectionState) => {
    if (state === reported) return;
    reported = state;
    onStateChange?.(state);
  };
  return {
    set(id: symbol, state: WatchState | 'ended') {
      if (reported === 'closed') return;
      if (state === 'ended') byWatch.delete(id);
      else byWatch.set(id, state);
      const states = new Set(byWatch.values());
      // With no watch open, the last state stands.
      if (states.has('reconnecting')) report('reconnecting');
      else if (states.has('connecting')) report('connecting');
      else if (states.has('live')) report('live');
    },
    close: () => report('closed'),
  };
}
