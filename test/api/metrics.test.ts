/** /metrics: yoga's request metrics, the process's, and the live hub's, in Prometheus text format. */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { subscribeSse, UPDATES } from '../helpers/live.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

const scrape = async () => {
  const response = await fetch(`${app.url}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
};
const valueOf = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

test('counts GraphQL requests, open subscriptions and delivered events', async () => {
  const token = await app.token({ sub: 'metrics-admin', role: 'admin' });
  const live = await subscribeSse(app.url, token, UPDATES);
  await waitFor(() => app.running.hub.subscriberCount === 1, 'the subscription');
  const before = await scrape();
  expect(valueOf(before, 'tracker_live_subscriptions')).toBe(1);
  const deliveredBefore = valueOf(before, 'tracker_live_events_delivered_total');

  dataOf(
    await app.graphql(`mutation { submitContentRequest(input: { correlationId: "metrics-1", topic: "t", studentQuery: "q" }) { created } }`, {
      token,
    }),
  );
  await live.waitForPayloads(1);
  const after = await scrape();
  expect(valueOf(after, 'tracker_live_events_delivered_total')).toBe(deliveredBefore + 1);
  expect(after).toMatch(/^graphql_envelop_request_duration_count\{[^}]*operationType="mutation"[^}]*\} [1-9]/m);
  expect(after).toMatch(/^process_resident_memory_bytes \d+/m);
  await live.close();
  await waitFor(() => app.running.hub.subscriberCount === 0, 'the subscription to close');
  expect(valueOf(await scrape(), 'tracker_live_subscriptions')).toBe(0);
});

test('METRICS_PORT: /metrics on its own listener, and not on the main port', async () => {
  const separate = await startTestApp({ env: { METRICS_PORT: '0' } });
  try {
    expect(separate.running.metricsUrl).not.toBe(`${separate.url}/metrics`);
    const own = await fetch(separate.running.metricsUrl);
    expect(own.status).toBe(200);
    expect(await own.text()).toMatch(/^tracker_live_subscriptions 0$/m);
    const main = await fetch(`${separate.url}/metrics`);
    expect(main.status).toBe(404);
    expect(await main.text()).not.toContain('tracker_live_subscriptions');
  } finally {
    await separate.close();
  }
});
