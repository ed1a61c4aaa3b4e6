/**
 * Every call the page makes to the service, behind the shape of the typed
 * client (createTrackerClient): watchRequest and watchUpdates as async
 * iterables that reconnect and resume from the last sequence or cursor they
 * yielded, and query over HTTP. Built here on graphql-ws until the typed
 * client replaces this one file.
 */
import { createClient, type Client } from 'graphql-ws';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting';

/** One message of contentRequestProgress or contentRequestUpdates, as the page asks for it. */
export type Update = {
  kind: 'SNAPSHOT' | 'EVENT';
  cursor: string;
  sequence: string;
  requestId: string;
  status: string;
  stage: string | null;
  progressPercentage: number;
  event: { sequence: string; eventType: string; newStatus: string; stage: string | null; createdAt: string } | null;
  request?: { topic: string; errorStage: string | null; errorMessage: string | null };
};

export type UpdatesFilter = { status?: string[]; studentId?: string; organizationId?: string };

export type TrackerClient = {
  watchRequest(id: string, options?: { afterSequence?: string; signal?: AbortSignal }): AsyncIterable<Update>;
  watchUpdates(filter: UpdatesFilter | null, options?: { after?: string; withRequest?: boolean; signal?: AbortSignal }): AsyncIterable<Update>;
  query<T>(document: string, variables?: Record<string, unknown>): Promise<T>;
  close(): void;
};

const UPDATE_FIELDS = `kind cursor sequence requestId status stage progressPercentage
  event { sequence eventType newStatus stage createdAt }`;

/** A GraphQL answer with errors: the request itself is refused; retrying will not help. */
export class GraphQLRequestError extends Error {}

export function createTrackerClient(options: {
  url: string;
  getToken: () => string | null;
  onStateChange?: (state: ConnectionState) => void;
}): TrackerClient {
  let everConnected = false;
  // Streams being watched: a socket closed with none (the last one ended) is not a lost connection.
  let watching = 0;
  const socket: Client = createClient({
    url: options.url.replace(/^http/, 'ws') + '/graphql',
    connectionParams: () => ({ authorization: `Bearer ${options.getToken() ?? ''}` }),
    // Resuming is done below, from the last message each stream yielded.
    retryAttempts: 0,
    on: {
      connected: () => {
        everConnected = true;
        options.onStateChange?.('live');
      },
      closed: () => {
        if (watching > 0) options.onStateChange?.(everConnected ? 'reconnecting' : 'connecting');
      },
    },
  });

  /**
   * Runs the subscription again after each lost connection, with the
   * variables the last message left; ends when the server ends it or `signal` aborts.
   */
  async function* resuming(query: string, variables: () => Record<string, unknown>, seen: (update: Update) => boolean, signal?: AbortSignal) {
    watching++;
    try {
      yield* resumingLoop(query, variables, seen, signal);
    } finally {
      watching--;
    }
  }

  async function* resumingLoop(query: string, variables: () => Record<string, unknown>, seen: (update: Update) => boolean, signal?: AbortSignal) {
    for (let attempt = 0; !signal?.aborted; attempt++) {
      const stream = socket.iterate<Record<string, Update>>({ query, variables: variables() });
      // Stopping: return() unsubscribes at once, throw() wakes the loop waiting on the next message.
      const stop = () => void stream.return?.().then(() => stream.throw?.(signal?.reason));
      signal?.addEventListener('abort', stop, { once: true });
      try {
        for await (const result of stream) {
          if (result.errors?.length) throw new GraphQLRequestError(result.errors.map((e) => e.message).join('; '));
          const update = Object.values(result.data ?? {})[0];
          if (!update || !seen(update)) continue;
          attempt = 0;
          yield update;
        }
        return; // the server ended the stream (a finished request)
      } catch (error) {
        if (signal?.aborted) return;
        if (error instanceof GraphQLRequestError || Array.isArray(error)) throw error;
        options.onStateChange?.('reconnecting');
        // Backoff: 0.5 s, 1 s, 2 s … up to 10 s.
        await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** attempt)));
      } finally {
        signal?.removeEventListener('abort', stop);
      }
    }
  }

  return {
    watchRequest(id, { afterSequence, signal } = {}) {
      let last = afterSequence;
      const query = `subscription ($id: ID!, $after: BigInt) { contentRequestProgress(id: $id, afterSequence: $after) { ${UPDATE_FIELDS} } }`;
      return resuming(query, () => ({ id, after: last ?? null }), (update) => {
        // A snapshot carries the sequence it stands at; events after it follow.
        if (last !== undefined && BigInt(update.sequence) <= BigInt(last)) return false;
        last = update.sequence;
        return true;
      }, signal);
    },
    watchUpdates(filter, { after, withRequest = false, signal } = {}) {
      let cursor = after;
      const fields = withRequest ? `${UPDATE_FIELDS} request { topic errorStage errorMessage }` : UPDATE_FIELDS;
      const query = `subscription ($filter: ContentRequestUpdatesFilter, $after: String) { contentRequestUpdates(filter: $filter, after: $after) { ${fields} } }`;
      return resuming(query, () => ({ filter, after: cursor ?? null }), (update) => {
        cursor = update.cursor;
        return true;
      }, signal);
    },
    async query<T>(document: string, variables: Record<string, unknown> = {}) {
      const response = await fetch(`${options.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${options.getToken() ?? ''}` },
        body: JSON.stringify({ query: document, variables }),
      });
      // A proxy's error page or an empty 5xx is not JSON: the status then says what happened.
      const body = ((await response.json().catch(() => null)) ?? {}) as { data?: T; errors?: { message: string }[] };
      if (body.errors?.length || !body.data) throw new GraphQLRequestError(body.errors?.map((e) => e.message).join('; ') ?? `HTTP ${response.status}`);
      return body.data;
    },
    close: () => void socket.dispose(),
  };
}
