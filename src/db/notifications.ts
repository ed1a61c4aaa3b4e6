/**
 * One notification interface, two implementations: pg-listen on a dedicated
 * connection to a real server, and PGlite's own listen when embedded.
 *
 * Transport only: a payload arrives as the text that was sent, on the channel
 * the caller names; what it means is the caller's to decide.
 *
 * A NOTIFY is a latency hint; the tables are the truth. Whatever is committed
 * while the listener is disconnected never arrives, so `onReconnect` tells the
 * caller when to catch up from `request_events`.
 */
import type { PGlite } from '@electric-sql/pglite';
import createSubscriberModule from 'pg-listen';
import type { Logger } from '../logger.js';

export type NotificationHandler = (payload: string) => void;

export interface NotificationListener {
  /** Resolves once LISTEN is active on the channel. */
  listen(channel: string, onNotification: NotificationHandler): Promise<void>;
  /** Called each time the connection is back and listening after a loss. Returns an unsubscribe. */
  onReconnect(callback: () => void): () => void;
  close(): Promise<void>;
}

// Under module NodeNext, pg-listen's CommonJS default export arrives wrapped.
const createSubscriber = (createSubscriberModule.default ??
  createSubscriberModule) as typeof createSubscriberModule.default;

export type PgNotificationListenerOptions = {
  connectionString: string;
  logger: Logger;
  /** Shown in pg_stat_activity, so operators (and tests) can find the listening backend. */
  applicationName?: string;
  /** Longest wait between reconnection attempts. */
  maxRetryIntervalMs?: number;
};

export async function createPgNotificationListener(
  options: PgNotificationListenerOptions,
): Promise<NotificationListener> {
  const logger = options.logger.child({ component: 'notification-listener' });
  const maxRetryIntervalMs = options.maxRetryIntervalMs ?? 5_000;
  const subscriber = createSubscriber(
    {
      connectionString: options.connectionString,
      application_name: options.applicationName ?? 'content-request-tracker:listener',
    },
    {
      // pg-listen gives up after 3 s by default and never reconnects again.
      retryLimit: Number.POSITIVE_INFINITY,
      retryTimeout: Number.POSITIVE_INFINITY,
      retryInterval: (attempt) => Math.min(100 * 2 ** attempt, maxRetryIntervalMs),
      // Also catches a connection that died while pg-listen was re-listening.
      paranoidChecking: 5_000,
      parse: (payload) => payload,
    },
  );
  const reconnectCallbacks = new Set<() => void>();
  let connectedOnce = false;

  // An unhandled 'error' event would kill the process; pg-listen keeps retrying.
  subscriber.events.on('error', (error) => {
    logger.error({ err: error }, 'notification connection error');
  });
  subscriber.events.on('reconnect', (attempt) => {
    logger.warn({ attempt }, 'notification connection lost, reconnecting');
  });
  subscriber.events.on('connected', () => {
    if (!connectedOnce) {
      connectedOnce = true;
      return;
    }
    logger.info('notification connection restored');
    for (const callback of reconnectCallbacks) callback();
  });

  await subscriber.connect();

  return {
    async listen(channel, onNotification) {
      subscriber.notifications.on(channel, (payload: unknown) => {
        if (typeof payload === 'string') onNotification(payload);
      });
      await subscriber.listenTo(channel);
    },
    onReconnect(callback) {
      reconnectCallbacks.add(callback);
      return () => {
        reconnectCallbacks.delete(callback);
      };
    },
    async close() {
      reconnectCallbacks.clear();
      await subscriber.close();
    },
  };
}

/**
 * PGlite is one in-process connection: it sees every NOTIFY raised on the same
 * instance, which is every write, and it never disconnects.
 */
export function createPgliteNotificationListener(pglite: PGlite): NotificationListener {
  const unsubscribers: Array<Awaited<ReturnType<PGlite["listen"]>>> = [];
  return {
    async listen(channel, onNotification) {
      unsubscribers.push(await pglite.listen(channel, onNotification));
    },
    onReconnect() {
      return () => undefined;
    },
    async close() {
      const pending = unsubscribers.splice(0);
      if (pglite.closed) return;
      await Promise.all(pending.map((unsubscribe) => unsubscribe(undefined)));
    },
  };
}
