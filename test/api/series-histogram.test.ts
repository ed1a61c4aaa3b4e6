/** The request path's histogram is written out as prom-client writes its own, for the same observations. */
import { Histogram, Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { SeriesHistogram } from '../../src/http/series-histogram.js';

// Values on bucket bounds, between them, past the last, zero, and a tiny one.
const observations: [Record<string, string | number>, number][] = [
  [{ operationName: 'History', operationType: 'query' }, 0.0031],
  [{ operationName: 'History', operationType: 'query' }, 0.005],
  [{ operationName: 'History', operationType: 'query' }, 0.2],
  [{ operationType: 'mutation', operationName: 'Submit' }, 11],
  [{ operationType: 'mutation', operationName: 'Submit' }, 1],
  [{ operationName: 'Anonymous', operationType: 'query' }, 0],
  [{ operationName: 'Anonymous', operationType: 'query' }, 1e-9],
  [{ operationName: 'History', operationType: 'query' }, 2.5],
];

function both(buckets?: number[]) {
  const theirs = new Registry();
  const ours = new Registry();
  const histogram = new Histogram({ name: 'request_seconds', help: 'Time "spent"\non a request', labelNames: ['operationName', 'operationType'], registers: [theirs], ...(buckets ? { buckets } : {}) });
  const series = new SeriesHistogram('request_seconds', 'Time "spent"\non a request', ['operationName', 'operationType'], ours, buckets);
  return { theirs, ours, histogram, series };
}

test('the text and JSON of a registry match prom-client for the same observations, kept series or looked up', async () => {
  const { theirs, ours, histogram, series } = both();
  const kept = series.seriesFor({ operationName: 'History', operationType: 'query' });
  for (const [labels, value] of observations) {
    histogram.observe(labels, value);
    if (labels.operationName === 'History') kept.observe(value);
    else series.observe(labels, value);
  }
  const text = await ours.metrics();
  expect(text).toBe(await theirs.metrics());
  expect(text).toMatch(/^request_seconds_bucket\{le="\+Inf",operationName="History",operationType="query"\} 4$/m);
  expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
});

test('custom buckets count as prom-client counts them', async () => {
  const { theirs, ours, histogram, series } = both([0.001, 0.1, 0.5, 1]);
  for (const [labels, value] of observations) {
    histogram.observe(labels, value);
    series.observe(labels, value);
  }
  expect(await ours.metrics()).toBe(await theirs.metrics());
});

test('a label the histogram was not made with is refused, as prom-client refuses it; a value that is not finite is not counted', async () => {
  const { ours, series } = both();
  expect(() => series.seriesFor({ operationName: 'x', path: '/graphql' })).toThrow(/path/);
  expect(() => new SeriesHistogram('other_seconds', 'Other', ['le'], new Registry())).toThrow(/le/);
  const kept = series.seriesFor({ operationName: 'x', operationType: 'query' });
  kept.observe(Number.NaN);
  kept.observe(Number.POSITIVE_INFINITY);
  kept.observe(0.01);
  expect(await ours.metrics()).toMatch(/^request_seconds_count\{operationName="x",operationType="query"\} 1$/m);
});

test('reset zeroes every series, and a kept series counts on after it', async () => {
  const { ours, series } = both();
  const kept = series.seriesFor({ operationName: 'x', operationType: 'query' });
  kept.observe(0.3);
  ours.resetMetrics();
  expect(await ours.metrics()).toMatch(/^request_seconds_count\{operationName="x",operationType="query"\} 0$/m);
  kept.observe(0.3);
  const text = await ours.metrics();
  expect(text).toMatch(/^request_seconds_count\{operationName="x",operationType="query"\} 1$/m);
  expect(text).toMatch(/^request_seconds_sum\{operationName="x",operationType="query"\} 0\.3$/m);
  expect(text).toMatch(/^request_seconds_bucket\{le="0\.25",operationName="x",operationType="query"\} 0$/m);
  expect(text).toMatch(/^request_seconds_bucket\{le="0\.5",operationName="x",operationType="query"\} 1$/m);
});
