/**
 * Phase 4a: the server's heap per open subscription and per socket, and
 * what stays once they are closed.
 */
import type { RunningApp } from '../../src/app.js';
import { until } from '../lib/clock.js';
import { round } from '../lib/stats.js';
import { serverHeap, type Bench } from './phase.js';
import type { Seeded } from './seed.js';

export type HeapFigure = {
  subscriptions: number;
  sockets: number;
  /** heapUsed growth per idle contentRequestProgress subscription, each on its own request. */
  perSubscriptionBytes: number;
  /** heapUsed growth per connected, acknowledged graphql-ws socket with no subscription. */
  perSocketBytes: number;
  /** What stays on the heap per subscription once all are closed (a leak if well above 0). */
  retainedAfterClosePerSubscriptionBytes: number;
  /** The same, for subscriptions that all follow one request (the fan-out set). */
  perSharedTopicSubscriptionBytes: number;
  hubSubscribersOpen: number;
  hubSubscribersAfterClose: number;
  /** Subscriptions opened a second (snapshot received) when opening them all at once. */
  subscribeRate: number;
  /** request_events rows when the subscriptions were opened. */
  requestEvents: number;
  /** Opening subscriptions again after the ramps (request_events much larger). */
  lateSubscribe: { subscriptions: number; subscribeRate: number; requestEvents: number };
  heapUsedBytes: { beforeSockets: number; withSockets: number; socketsOnly: number; open: number; closed: number };
};

export async function heapPhase(bench: Bench, running: RunningApp, token: string, seeded: Seeded): Promise<HeapFigure> {
  const { driver, plan, log } = bench;
  const idle = seeded.heapIdle;
  const n = idle.length;
  const sockets = Math.ceil(n / plan.subscriptionsPerSocket);
  const waitForHub = (count: number) => until(() => running.hub.subscriberCount === count, 60_000);

  // Warm up the paths a subscription takes, then let it all go.
  await driver.call('connectSockets', { serverUrl: running.url, token, count: 1 });
  await driver.call('subscribeIdle', { ids: idle.slice(0, Math.min(n, 200)) });
  await driver.call('unsubscribeIdle');
  await driver.call('disconnectSockets');
  await waitForHub(0);

  log(`heap: ${plan.socketSample} sockets without subscriptions`);
  const beforeSockets = await serverHeap(running);
  await driver.call('connectSockets', { serverUrl: running.url, token, count: plan.socketSample });
  const withSockets = await serverHeap(running);
  await driver.call('disconnectSockets');

  log(`heap: ${n} idle subscriptions on ${sockets} sockets`);
  await driver.call('connectSockets', { serverUrl: running.url, token, count: sockets });
  const socketsOnly = await serverHeap(running);
  const opened = await driver.call<{ ms: number }>('subscribeIdle', { ids: idle });
  log(`heap: opened ${n} subscriptions in ${Math.round(opened.ms)} ms`);
  await waitForHub(n);
  const hubSubscribersOpen = running.hub.subscriberCount;
  const open = await serverHeap(running);
  await driver.call('unsubscribeIdle');
  await waitForHub(0);
  const hubSubscribersAfterClose = running.hub.subscriberCount;
  const closed = await serverHeap(running);
  // The fan-out phase uses these sockets, as many as its own subscribers need.
  const fanoutSockets = Math.ceil(seeded.idle.length / plan.subscriptionsPerSocket);
  if (fanoutSockets !== sockets) {
    await driver.call('disconnectSockets');
    await driver.call('connectSockets', { serverUrl: running.url, token, count: fanoutSockets });
  }
  return {
    subscriptions: n,
    sockets,
    perSubscriptionBytes: Math.round((open - socketsOnly) / n),
    perSocketBytes: Math.round((withSockets - beforeSockets) / plan.socketSample),
    retainedAfterClosePerSubscriptionBytes: Math.round((closed - socketsOnly) / n),
    perSharedTopicSubscriptionBytes: NaN,
    hubSubscribersOpen,
    hubSubscribersAfterClose,
    subscribeRate: round(n / (opened.ms / 1000), 0),
    requestEvents: NaN,
    lateSubscribe: { subscriptions: 0, subscribeRate: NaN, requestEvents: NaN },
    heapUsedBytes: { beforeSockets, withSockets, socketsOnly, open, closed },
  };
}
