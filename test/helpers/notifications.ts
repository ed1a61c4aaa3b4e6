import type { Database } from '../../src/db/client.js';
import type { NotificationListener } from '../../src/db/notifications.js';
import { parseLiveEventNotification, REQUEST_EVENTS_CHANNEL, type LiveEvent } from '../../src/services/live-events.js';
import { silentLogger } from '../../src/logger.js';
import { waitFor } from './database.js';

export type RequestEventRecorder = {
  received: LiveEvent[];
  listener: NotificationListener;
  /** Waits until `count` notifications in all have arrived. */
  waitForCount(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
};

/** Listens on the request-events channel through the database's own listener and parses every payload. */
export async function recordRequestEvents(database: Database): Promise<RequestEventRecorder> {
  const listener = await database.createNotificationListener(silentLogger);
  const received: LiveEvent[] = [];
  await listener.listen(REQUEST_EVENTS_CHANNEL, (payload) => {
    received.push(parseLiveEventNotification(payload));
  });
  return {
    received,
    listener,
    waitForCount: (count, timeoutMs) =>
      waitFor(() => received.length >= count, `${count} notifications (have ${received.length})`, timeoutMs),
    close: () => listener.close(),
  };
}
