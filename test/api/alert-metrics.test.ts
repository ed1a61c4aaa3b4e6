/**
 * The metrics the alert rules (ops/prometheus/alerts.yml) read exist on a real
 * server's /metrics, with the label values the rules match, after a request
 * completes and another fails: the rules cannot drift from the code. And what
 * they count is right.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { driveToCompletion, reportStage, submitRequest, type Client } from '../helpers/requests.js';
import { ROOT } from '../helpers/service-process.js';

let app: TestApp;
let student: Client;
let worker: Client;
beforeAll(async () => {
  app = await startTestApp();
  student = { url: app.url, token: await app.token({ sub: 'alerts-student', role: 'student' }) };
  worker = { url: app.url, token: await app.token({ sub: 'alerts-worker', role: 'worker' }) };
});
afterAll(() => app?.close());

const scrape = async () => {
  const response = await fetch(app.running.metricsUrl);
  expect(response.status).toBe(200);
  return response.text();
};

/** Samples of `name` as [labels, value] pairs. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const found = [];
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))) {
    const labels = Object.fromEntries([...(match[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((pair) => [pair[1]!, pair[2]!]));
    found.push({ labels, value: Number(match[2]) });
  }
  return found;
}
const valueOf = (text: string, name: string, labels: Record<string, string> = {}) =>
  samples(text, name).find((sample) => Object.entries(labels).every(([key, value]) => sample.labels[key] === value))?.value;

/** Each metric a rule's expression names, with the label values it matches (`=` one, `=~` alternatives). */
function metricsTheRulesUse(rules: string): Map<string, { label: string; value: string }[]> {
  const used = new Map<string, { label: string; value: string }[]>();
  const expressions = [...rules.matchAll(/expr: (?:\|\n((?:\s{10,}.*\n)+)|(.*)\n)/g)].map((match) => match[1] ?? match[2]!);
  expect(expressions.length).toBeGreaterThanOrEqual(4);
  for (const expression of expressions) {
    for (const match of expression.matchAll(/\b(tracker_\w+)(?:\{([^}]*)\})?/g)) {
      const matchers = used.get(match[1]!) ?? [];
      for (const matcher of (match[2] ?? '').matchAll(/(\w+)(=~?)"([^"]*)"/g)) {
        const values = matcher[2] === '=~' ? matcher[3]!.split('|') : [matcher[3]!];
        for (const value of values) matchers.push({ label: matcher[1]!, value });
      }
      used.set(match[1]!, matchers);
    }
  }
  return used;
}

test('every metric and label value the alert rules use is on /metrics', async () => {
  const completed = await submitRequest(student);
  await driveToCompletion(worker, completed.id);
  const failed = await submitRequest(student);
  await reportStage(worker, failed.id, 'validation', 'IN_PROGRESS');
  await reportStage(worker, failed.id, 'validation', 'FAILED', undefined, { errorMessage: 'no such topic' });

  // Durations are looked up in batches after the events arrive.
  let text = await scrape();
  for (let polls = 0; polls < 200 && !(valueOf(text, 'tracker_request_duration_seconds_count')! >= 1); polls++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    text = await scrape();
  }

  const used = metricsTheRulesUse(await readFile(path.join(ROOT, 'ops/prometheus/alerts.yml'), 'utf8'));
  expect([...used.keys()].sort()).toEqual([
    'tracker_listener_reconnects_total',
    'tracker_request_duration_seconds_count',
    'tracker_request_duration_seconds_sum',
    'tracker_request_status_transitions_total',
    'tracker_stalled_requests',
  ]);
  for (const [name, matchers] of used) {
    expect(samples(text, name).length, name).toBeGreaterThan(0);
    for (const { label, value } of matchers) expect(valueOf(text, name, { [label]: value }), `${name}{${label}="${value}"}`).toBeDefined();
  }

  // And the figures are the changes just made.
  expect(valueOf(text, 'tracker_request_status_transitions_total', { status: 'pending' })).toBe(2);
  expect(valueOf(text, 'tracker_request_status_transitions_total', { status: 'completed' })).toBe(1);
  expect(valueOf(text, 'tracker_request_status_transitions_total', { status: 'failed' })).toBe(1);
  expect(valueOf(text, 'tracker_request_duration_seconds_count')).toBe(1);
  expect(valueOf(text, 'tracker_requests', { status: 'completed' })).toBe(1);
  expect(valueOf(text, 'tracker_requests', { status: 'failed' })).toBe(1);
  expect(valueOf(text, 'tracker_requests', { status: 'validating' })).toBe(0);
  // Validation completed once (and failed once: not a completed stage's duration); the last stage completed the request.
  expect(valueOf(text, 'tracker_stage_duration_seconds_count', { stage: 'validation' })).toBe(1);
  expect(valueOf(text, 'tracker_stage_duration_seconds_count', { stage: 'video_processing' })).toBe(1);
  // Stages are labelled from pipeline_stage_definitions, all of them from the start.
  expect(new Set(samples(text, 'tracker_stage_duration_seconds_count').map((sample) => sample.labels.stage))).toEqual(
    new Set(['validation', 'retrieval', 'script_generation', 'video_generation', 'video_processing']),
  );
});

test('the requests-by-status gauge reads the database once per METRICS_GAUGE_MAX_AGE_SECONDS, however many scrapes', async () => {
  const counts: string[] = [];
  const cached = await startTestApp({
    env: { METRICS_GAUGE_MAX_AGE_SECONDS: '3600' },
    onQuery: (query) => {
      if (/group by "content_requests"\."status"/i.test(query)) counts.push(query);
    },
  });
  try {
    const scrapes = await Promise.all(Array.from({ length: 5 }, () => fetch(cached.running.metricsUrl).then((response) => response.text())));
    for (let i = 0; i < 5; i++) scrapes.push(await (await fetch(cached.running.metricsUrl)).text());
    for (const text of scrapes) expect(text).toMatch(/^tracker_requests\{status="pending"\} 0$/m);
    expect(counts).toHaveLength(1);
  } finally {
    await cached.close();
  }
});
