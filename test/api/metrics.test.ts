/** /metrics: yoga's request metrics, the process's, and the live hub's, in Prometheus text format. */
import { connect } from 'node:net';
import { buildSchema, parse, TypeInfo } from 'graphql';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { deprecatedFieldsOf } from '../../src/http/metrics.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { PROGRESS, subscribeSse, UPDATES } from '../helpers/live.js';
import { submitRequest } from '../helpers/requests.js';

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

  await submitRequest({ url: app.url, token }, { correlationId: 'metrics-1' });
  await live.waitForPayloads(1);
  const after = await scrape();
  expect(valueOf(after, 'tracker_live_events_delivered_total')).toBe(deliveredBefore + 1);
  expect(after).toMatch(/^graphql_envelop_request_duration_count\{[^}]*operationType="mutation"[^}]*\} [1-9]/m);
  expect(after).toMatch(/^process_resident_memory_bytes \d+/m);
  // A subscription is counted, with its lifetime, once it is over.
  expect(after).not.toMatch(/^graphql_envelop_request\{[^}]*operationType="subscription"/m);
  await live.close();
  await waitFor(() => app.running.hub.subscriberCount === 0, 'the subscription to close');
  const closed = await scrape();
  expect(valueOf(closed, 'tracker_live_subscriptions')).toBe(0);
  expect(closed).toMatch(/^graphql_envelop_request\{[^}]*operationType="subscription"[^}]*\} 1$/m);
  expect(closed).toMatch(/^graphql_envelop_request_duration_count\{[^}]*operationType="subscription"[^}]*\} 1$/m);
  expect(closed).toMatch(/^graphql_envelop_phase_subscribe_count\{operationType="subscription"\} 1$/m);
});

test('a subscription refused at the start is counted, with its error', async () => {
  const countOf = (text: string, name: string) =>
    Number(new RegExp(`^${name}\\{[^}]*operationType="subscription"[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  const before = await scrape();
  const token = await app.token({ sub: 'metrics-student', role: 'student', organization_id: 'metrics-org' });
  const refused = await subscribeSse(app.url, token, PROGRESS, { id: 'no-such-request' });
  await refused.ended;
  expect(refused.messages.at(-1)?.errors?.length).toBe(1);
  const after = await scrape();
  expect(countOf(after, 'graphql_envelop_request')).toBe(countOf(before, 'graphql_envelop_request') + 1);
  expect(countOf(after, 'graphql_envelop_error_result')).toBe(countOf(before, 'graphql_envelop_error_result') + 1);
  expect(after).toMatch(/^graphql_envelop_error_result\{[^}]*operationType="subscription"[^}]*phase="execute"[^}]*\} 1$/m);
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

/** The status line a raw HTTP/1.1 request gets (the request target as given, not as a client library would fix it). */
function rawStatusLine(url: string, target: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('end', () => resolve(text.split('\r\n')[0]!));
    socket.on('error', reject);
  });
}

test('a request target that is not a URL gets a 4xx from either listener, and both go on answering', async () => {
  const separate = await startTestApp({ env: { METRICS_PORT: '0' } });
  try {
    for (const url of [separate.running.metricsUrl, `${separate.url}/graphql`]) {
      expect(await rawStatusLine(url, 'http://[')).toMatch(/^HTTP\/1\.1 4\d\d /);
      expect((await fetch(url)).status).toBeLessThan(500);
    }
  } finally {
    await separate.close();
  }
});

test('a query is counted in every phase it went through, a refused one in the phase that refused it', async () => {
  const token = await app.token({ sub: 'metrics-phases', role: 'admin' });
  const count = (text: string, line: RegExp) => Number(line.exec(text)?.[1] ?? 0);
  const before = await scrape();
  expect((await app.graphql('query MetricsPhases { __typename }', { token })).status).toBe(200);
  expect((await app.graphql('query MetricsUnknown { noSuchField }', { token })).status).toBe(400);
  expect((await app.graphql('query {', { token })).status).toBe(400);
  const after = await scrape();
  const grew = (line: RegExp, by = 1) => expect(count(after, line) - count(before, line)).toBe(by);

  for (const phase of ['parse', 'validate', 'context', 'execute']) {
    grew(new RegExp(`^graphql_envelop_phase_${phase}_count\\{operationType="query"\\} (\\d+)$`, 'm'), phase === 'parse' || phase === 'validate' ? 2 : 1);
  }
  grew(/^graphql_envelop_request\{operationName="MetricsPhases",operationType="query"\} (\d+)$/m);
  grew(/^graphql_envelop_request_duration_count\{operationName="MetricsPhases",operationType="query"\} (\d+)$/m);
  grew(/^graphql_envelop_error_result\{operationName="MetricsUnknown",operationType="query",phase="validate"\} (\d+)$/m);
  // A document that does not parse has no operation to name.
  grew(/^graphql_envelop_error_result\{operationName="Anonymous",operationType="unknown",phase="parse"\} (\d+)$/m);
  grew(/^graphql_envelop_phase_parse_count\{operationType="unknown"\} (\d+)$/m);
  expect(after).not.toMatch(/^graphql_envelop_request\{operationName="MetricsUnknown"/m);
  grew(/^graphql_yoga_http_duration_count\{[^}]*operationName="MetricsPhases"[^}]*statusCode="200"[^}]*\} (\d+)$/m);
  expect(after).toMatch(/^graphql_envelop_schema_change 1$/m);
});

test('deprecated fields and arguments a document uses are found (the schema has none today: counted once it has)', () => {
  const schema = buildSchema(`
    type Query { old: Int @deprecated(reason: "gone") current(limit: Int @deprecated, first: Int): Item }
    type Item { name: String @deprecated(reason: "renamed") label: String }
  `);
  const document = parse('{ old current(limit: 1, first: 2) { name label } again: current { label } }');
  expect(deprecatedFieldsOf(document, new TypeInfo(schema))).toEqual([
    { fieldName: 'old', typeName: 'Query' },
    { fieldName: 'limit', typeName: 'current' },
    { fieldName: 'name', typeName: 'Item' },
  ]);
});
