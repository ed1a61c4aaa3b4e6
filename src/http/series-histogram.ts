/**
 * A Prometheus histogram for the per-request path. prom-client's Histogram
 * checks, hashes and copies a label set on every observation (a closure, a
 * key string, an object): with seven observations a request, that was most of
 * the request metrics' share of a history page's CPU. Here a label set is
 * resolved once into its series, the caller keeps the series (the request
 * metrics cache theirs per operation), and an observation is a few additions.
 *
 * It sits in a prom-client registry beside prom-client's own metrics and is
 * written out exactly as prom-client writes a histogram (the test compares the
 * two texts). One difference: `reset()` zeroes each series rather than
 * dropping it, because callers hold series.
 */
import type { Metric, Registry } from 'prom-client';

type LabelValues = Record<string, string | number>;
/** A line of the histogram as prom-client's registry reads one: the series' labels apart from the line's own (`le`). */
type Value = { labels: LabelValues; sharedLabels: LabelValues; value: number; metricName: string; exemplar?: null };
type MetricData<V> = { name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: V[] };

/** prom-client's default buckets, which yoga's Prometheus plugin used. */
const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One label set's counts: per bucket (not cumulative), the sum and the count. */
export class HistogramSeries {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly labels: Readonly<LabelValues>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    // prom-client throws on these; a duration is never one, and a metric must not fail a request.
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
    if (bucket < bounds.length) this.counts[bucket]!++;
    this.sum += value;
    this.count++;
  }

  zero(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /** The series as prom-client lists a histogram's values: cumulative buckets, +Inf, sum, count. */
  values(name: string): Value[] {
    const sharedLabels = this.labels;
    const values: Value[] = [];
    let cumulative = 0;
    this.bounds.forEach((le, bucket) => {
      cumulative += this.counts[bucket]!;
      values.push({ labels: { le }, sharedLabels, value: cumulative, metricName: `${name}_bucket`, exemplar: null });
    });
    values.push(
      { labels: { le: '+Inf' }, sharedLabels, value: this.count, metricName: `${name}_bucket`, exemplar: null },
      { labels: {}, sharedLabels, value: this.sum, metricName: `${name}_sum` },
      { labels: {}, sharedLabels, value: this.count, metricName: `${name}_count` },
    );
    return values;
  }
}

export class SeriesHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, HistogramSeries>();
  private readonly bounds: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registry: Registry,
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {
    // As prom-client: `le` names each bucket's line.
    if (labelNames.includes('le')) throw new Error('le is a reserved label keyword');
    this.bounds = [...buckets].sort((a, b) => a - b);
    // prom-client's registry reads a metric through getForPromString/get/reset only: this is one by shape.
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of a label set, made on first use. Keep it: finding it again costs what prom-client costs. */
  seriesFor(labels: LabelValues): HistogramSeries {
    const key = JSON.stringify(this.labelNames.map((name) => labels[name]));
    let series = this.series.get(key);
    if (!series) {
      for (const name of Object.keys(labels)) {
        if (!this.labelNames.includes(name)) throw new Error(`Added label "${name}" is not included in initial labelset: ${JSON.stringify(this.labelNames)}`);
      }
      series = new HistogramSeries({ ...labels }, this.bounds);
      this.series.set(key, series);
    }
    return series;
  }

  /** For the rare observation (a document that did not parse, a subscription's end): looks its series up. */
  observe(labels: LabelValues, value: number): void {
    this.seriesFor(labels).observe(value);
  }

  reset(): void {
    for (const series of this.series.values()) series.zero();
  }

  getForPromString(): MetricData<Value> {
    const values = [...this.series.values()].flatMap((series) => series.values(this.name));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** As prom-client's `get()`: each value's series labels merged into its own. */
  get(): Promise<MetricData<Omit<Value, 'sharedLabels'>>> {
    const metric = this.getForPromString();
    const values = metric.values.map(({ labels, sharedLabels, ...value }) => ({ ...value, labels: { ...labels, ...sharedLabels } }));
    return Promise.resolve({ ...metric, values });
  }
}
