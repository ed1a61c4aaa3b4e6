/**
 * The typed client (client/) as a frontend uses it, in Node: a real `ws`
 * WebSocket and Node's fetch, short retry delays so tests do not wait, and
 * a reader that collects what a watch yields in the background.
 */
import WebSocket from 'ws';
import {
  createTrackerClient,
  type ConnectionState,
  type RequestUpdate,
  type TrackerClient,
  type TrackerClientOptions,
} from '../../client/index.js';
import { waitFor } from './database.js';

export function trackerClient(
  url: string,
  transport: 'ws' | 'sse',
  getToken: () => string | Promise<string>,
  options: Partial<TrackerClientOptions> = {},
): TrackerClient & { states: ConnectionState[] } {
  const states: ConnectionState[] = [];
  const client = createTrackerClient({
    url: `${url}/graphql`,
    transport,
    getToken,
    webSocketImpl: WebSocket,
    retry: { initialDelayMs: 20, maxDelayMs: 200 },
    onStateChange: (state) => states.push(state),
    ...options,
  });
  return Object.assign(client, { states });
}

export type Collected = {
  updates: RequestUpdate[];
  /** Resolves when the watch ends: done, or the error it threw. */
  ended: Promise<{ error?: unknown }>;
  waitForUpdates(match: (updates: RequestUpdate[]) => boolean, what: string): Promise<RequestUpdate[]>;
};

export function collect(watch: AsyncIterable<RequestUpdate>): Collected {
  const updates: RequestUpdate[] = [];
  let isEnded = false;
  const ended = (async () => {
    try {
      for await (const update of watch) updates.push(update);
      return {};
    } catch (error) {
      return { error };
    } finally {
      isEnded = true;
    }
  })();
  return {
    updates,
    ended,
    async waitForUpdates(match, what) {
      await waitFor(() => match(updates) || isEnded, what, 15_000);
      if (!match(updates)) throw new Error(`the watch ended before ${what}: ${JSON.stringify(await ended)}`);
      return updates;
    },
  };
}
