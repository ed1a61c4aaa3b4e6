/**
 * Prometheus metrics on /metrics: yoga's own (requests, phases, errors,
 * HTTP durations), the process's (heap, event loop, GC) and the live hub's.
 * One registry per app, so several apps in one process (tests) do not collide.
 */
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { EventHub } from '../live/hub.js';

/** Faults of the whole process that main.ts catches, counted here. */
export type ProcessFaults = { unhandledRejections: number };

export function createMetricsPlugin(hub: EventHub, faults: ProcessFaults) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'tracker_live_subscriptions',
    help: 'Open live subscriptions (hub subscribers) in this process',
    registers: [registry],
    collect() {
      this.set(hub.subscriberCount);
    },
  });
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      // The hub keeps the running total; a scrape copies it.
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  counter('tracker_live_events_delivered_total', 'Request events the hub fanned out', () => hub.stats.delivered);
  counter('tracker_live_events_recovered_total', 'Events the hub read back from request_events after a gap or reconnection', () => hub.stats.recovered);
  counter('tracker_live_cutoffs_total', 'Live streams cut off for falling too far behind', () => hub.stats.cutOffs);
  counter('tracker_unhandled_rejections_total', 'Promise rejections nothing handled (logged; each one is a bug)', () => faults.unhandledRejections);
  counter('tracker_listener_reconnects_total', 'Times the notification listener reconnected', () => hub.stats.reconnects);

  return usePrometheus({ registry, endpoint: '/metrics' });
}
