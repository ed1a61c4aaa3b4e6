/**
 * Prometheus metrics: yoga's own (requests, phases, errors, HTTP durations),
 * the process's (heap, event loop, GC) and the live hub's. One registry per
 * app, so several apps in one process (tests) do not collide.
 *
 * Every label value is from a bounded set: a label set lives as long as the
 * process, so one per distinct URL or operation name is a memory leak, and a
 * query string may carry a token that /metrics would then publish.
 */
import { createServer, type Server } from 'node:http';
import {
  createCounter,
  createHistogram,
  usePrometheus,
  type FillLabelsFnParams,
} from '@graphql-yoga/plugin-prometheus';
import {
  getOperationAST,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type LabelValues } from 'prom-client';
import type { EventHub } from '../live/hub.js';
import type { SubscriptionEnds } from '../live/shared-results.js';
import type { PurgeCounts } from '../services/retention.js';
import { registerPipelineMetrics, type PipelineMetricsOptions } from './pipeline-metrics.js';

/** Faults of the whole process that main.ts catches, counted here. */
export type ProcessFaults = { unhandledRejections: number };

/** How many distinct operation names get a label of their own; later ones are counted as OTHER_OPERATION. */
export const MAX_OPERATION_NAMES = 50;
export const OTHER_OPERATION = 'other';
const KNOWN_PATHS = new Set(['/graphql']);

/**
 * A request URL's `url` label: its path if a known one, else `other`. The
 * label of the last URL seen is kept: a client sends the same URL (one Host,
 * `/graphql`) request after request, and parsing it each time was a third of
 * the metrics' own share of a history page's CPU.
 */
function pathLabeller(): (url: string) => string {
  let lastUrl: string | undefined;
  let lastLabel = 'other';
  return (url) => {
    if (url === lastUrl) return lastLabel;
    const path = new URL(url).pathname;
    lastUrl = url;
    lastLabel = KNOWN_PATHS.has(path) ? path : 'other';
    return lastLabel;
  };
}

/** First come, first kept, up to the cap: the shipped examples' names are kept from the start. */
class OperationNames {
  private readonly seen: Set<string>;
  constructor(known: readonly string[]) {
    this.seen = new Set(known);
  }
  label(name: string | undefined): string {
    if (!name) return 'Anonymous';
    if (this.seen.has(name)) return name;
    // A client's `operationName` parameter is any string: only a GraphQL name can be a label.
    if (this.seen.size >= MAX_OPERATION_NAMES || !/^[_A-Za-z][_0-9A-Za-z]{0,63}$/.test(name)) return OTHER_OPERATION;
    this.seen.add(name);
    return name;
  }
}

export type Metrics = {
  plugin: Plugin;
  registry: Registry;
  /** Told when a subscription is over (live/shared-results.ts): it records what the plugin's subscribe phases did. */
  subscriptionEnds: SubscriptionEnds;
  /** Counts a request answered by the direct path for plain POSTs (plain-posts.ts) rather than by yoga's adapter. */
  countDirectRequest(): void;
  /** Stops what feeds the metrics in the background. */
  close(): Promise<void>;
};

export function createMetrics(
  hub: EventHub,
  options: {
    knownOperations: readonly string[];
    endpoint: boolean;
    faults: ProcessFaults;
    /** The pipeline's requests, transitions and durations (pipeline-metrics.ts). */
    pipeline: Omit<PipelineMetricsOptions, 'hub'>;
  },
): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const closePipelineMetrics = registerPipelineMetrics(registry, { ...options.pipeline, hub });

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
  counter('tracker_live_events_recovered_total', 'Events the hub read back from request_events after a gap, a reconnection or an unreadable notification', () => hub.stats.recovered);
  counter('tracker_live_cutoffs_total', 'Live streams cut off for falling too far behind', () => hub.stats.cutOffs);
  counter('tracker_unhandled_rejections_total', 'Promise rejections nothing handled (logged; each one is a bug)', () => options.faults.unhandledRejections);
  counter('tracker_listener_reconnects_total', 'Times the notification listener reconnected', () => hub.stats.reconnects);
  counter('tracker_live_notifications_unreadable_total', 'Notifications the hub could not parse (it caught up from request_events instead)', () => hub.stats.unreadableNotifications);

  // The plugin's own metrics, with the same names, but with bounded label values.
  const names = new OperationNames(options.knownOperations);
  const operation = (params: FillLabelsFnParams) => ({
    operationName: names.label(params.operationName),
    operationType: params.operationType ?? 'unknown',
  });
  const labelNames = ['operationName', 'operationType'];
  // The phases by operation type only: per-operation timing is graphql_envelop_request_duration's
  // (each histogram label set is 14 lines, and /metrics must stay small).
  const histogram = <P extends string>(name: string, help: string, phases: P[]) =>
    createHistogram({
      registry,
      histogram: { name, help, labelNames: ['operationType'] },
      fillLabelsFn: (params) => ({ operationType: params.operationType ?? 'unknown' }),
      phases: phases as [P, ...P[]],
    });

  // Those with a subscribe phase are also observed by subscriptionPhases.
  const requestDuration = createHistogram<'execute' | 'subscribe', string>({
    registry,
    histogram: { name: 'graphql_envelop_request_duration', help: 'Time spent on running the GraphQL operation from parse to execute', labelNames },
    fillLabelsFn: operation,
    phases: ['execute'],
  });
  const requests = createCounter<'execute' | 'subscribe', string>({
    registry,
    counter: { name: 'graphql_envelop_request', help: 'Counts the amount of GraphQL requests executed through Envelop', labelNames },
    fillLabelsFn: operation,
    phases: ['execute'],
  });
  const errorResults = createCounter<'parse' | 'validate' | 'context' | 'execute' | 'subscribe', string, FillLabelsFnParams & { errorPhase: string }>({
    registry,
    counter: { name: 'graphql_envelop_error_result', help: 'Counts the amount of errors reported from all phases', labelNames: [...labelNames, 'phase'] },
    fillLabelsFn: (params) => ({ ...operation(params), phase: params.errorPhase }),
    phases: ['parse', 'validate', 'context', 'execute'],
  });
  const subscriptions = subscriptionPhases({
    subscribeDuration: histogram('graphql_envelop_phase_subscribe', 'Time spent on running the GraphQL "subscribe" function', ['subscribe']).histogram,
    requestDuration: requestDuration.histogram,
    requests: requests.counter,
    errorResults: errorResults.counter,
    labels: (args) => operation({ operationName: operationNameOf(args), operationType: 'subscription' } as FillLabelsFnParams),
  });

  let schemaHasDeprecations = true;
  const pathLabel = pathLabeller();
  const prometheus = usePrometheus({
    registry,
    endpoint: options.endpoint ? '/metrics' : false,
    metrics: {
      graphql_envelop_phase_parse: histogram('graphql_envelop_phase_parse', 'Time spent on running GraphQL "parse" function', ['parse']),
      graphql_envelop_phase_validate: histogram('graphql_envelop_phase_validate', 'Time spent on running GraphQL "validate" function', ['validate']),
      graphql_envelop_phase_context: histogram('graphql_envelop_phase_context', 'Time spent on building the GraphQL context', ['context']),
      graphql_envelop_phase_execute: histogram('graphql_envelop_phase_execute', 'Time spent on running the GraphQL "execute" function', ['execute']),
      // The subscribe phases are counted by subscriptionPhases below.
      graphql_envelop_phase_subscribe: false,
      graphql_envelop_request_duration: requestDuration,
      // Off: its quantiles (a t-digest updated on every request, about 2% of the service's
      // CPU serving a page) say what graphql_envelop_request_duration's buckets already do.
      graphql_envelop_request_time_summary: false,
      graphql_envelop_request: requests,
      // No `path` label: a response path holds the client's aliases and list indexes.
      graphql_envelop_error_result: errorResults,
      graphql_envelop_deprecated_field: createCounter({
        registry,
        counter: { name: 'graphql_envelop_deprecated_field', help: 'Counts the amount of deprecated fields used in selection sets', labelNames: [...labelNames, 'fieldName', 'typeName'] },
        // The schema's own names: bounded.
        fillLabelsFn: (params) => ({ ...operation(params), fieldName: params.deprecationInfo.fieldName, typeName: params.deprecationInfo.typeName }),
        // Each document is walked with the schema's type info to find them (about 2% of the CPU
        // serving a page): only when the schema has a deprecated field or argument to find.
        shouldObserve: () => schemaHasDeprecations,
        phases: ['parse'],
      }),
      // Observed by httpDurations below, not by the plugin.
      graphql_yoga_http_duration: false,
    },
  });
  const directRequests = new Counter({
    name: 'tracker_http_direct_requests_total',
    help: 'Plain POST /graphql requests answered without yoga\'s Fetch-API adapter (the rest of /graphql is yoga\'s)',
    registers: [registry],
  });
  const httpDurations = httpDurationPlugin(
    new Histogram({ name: 'graphql_yoga_http_duration', help: 'Time spent on HTTP connection', labelNames: [...labelNames, 'method', 'statusCode', 'url'], registers: [registry] }),
    // The path only, never the query string (it may carry a token).
    (seen, response) => ({
      operationName: names.label(seen.operationName),
      operationType: seen.operationType ?? 'unknown',
      method: /^(GET|POST)$/.test(seen.method) ? seen.method : 'other',
      statusCode: response.status,
      url: pathLabel(seen.url),
    }),
  );
  return {
    registry,
    close: closePipelineMetrics,
    countDirectRequest: () => directRequests.inc(),
    subscriptionEnds: subscriptions.ends,
    plugin: {
      onPluginInit: ({ addPlugin }) => {
        addPlugin(prometheus);
        addPlugin(httpDurations);
      },
      onSubscribe: subscriptions.onSubscribe,
      onSchemaChange: ({ schema }) => {
        schemaHasDeprecations = hasDeprecations(schema);
      },
    },
  };
}

// What a request's duration is labelled with, kept on the request itself: the plugin kept its
// start and operation in two WeakMaps, each entry a request's worth of work for the collector.
const HTTP_SEEN = Symbol('when the request began, and its operation');
type HttpSeen = { startedAt: number; method: string; url: string; operationName?: string; operationType?: string; parsed: boolean };
type SeenRequest = Request & { [HTTP_SEEN]?: HttpSeen };

/**
 * graphql_yoga_http_duration as yoga's Prometheus plugin observes it (its
 * name, help, labels, buckets and seconds): from the request's arrival to its
 * response, for requests whose document parsed, labelled with the
 * document's operation.
 */
function httpDurationPlugin(histogram: Histogram<string>, labels: (seen: HttpSeen, response: Response) => LabelValues<string>): Plugin {
  return {
    onRequest: ({ request }) => {
      (request as SeenRequest)[HTTP_SEEN] = { startedAt: Date.now(), method: request.method, url: request.url, parsed: false };
    },
    onParse: ({ context }) => {
      const seen = (context as { request?: SeenRequest }).request?.[HTTP_SEEN];
      if (!seen) return undefined;
      return ({ result }) => {
        if (result instanceof Error) return;
        const operation = getOperationAST(result, (context as { params?: { operationName?: string } }).params?.operationName);
        seen.operationName = operation?.name?.value;
        seen.operationType = operation?.operation;
        seen.parsed = true;
      };
    },
    onResponse: ({ request, response }) => {
      const seen = (request as SeenRequest)[HTTP_SEEN];
      if (seen?.parsed) histogram.observe(labels(seen, response), (Date.now() - seen.startedAt) / 1000);
    },
  };
}

/** The name the plugin labels an operation with: the request's operationName, else the document's. */
function operationNameOf(args: ExecutionArgs): string | undefined {
  return args.operationName || getOperationAST(args.document, args.operationName)?.name?.value;
}

type Labels = Record<string, string>;

/**
 * The plugin's subscribe phases, recorded as it recorded them, under the same
 * names: when a subscription is over, graphql_envelop_request once and its
 * lifetime in graphql_envelop_request_duration and
 * graphql_envelop_phase_subscribe; each error of a result in
 * graphql_envelop_error_result (phase "execute"), and an error that ends its
 * stream (phase "subscribe": the plugin left the phase empty, and counted no
 * request or duration for a stream that failed, as if it were still open).
 *
 * The plugin learns when a stream ends from a wrapper envelop puts around each
 * subscription's stream, and keeps its hook closures for as long as it runs
 * (with the wrapper, about 2.2 KB of an idle subscription's 9.4 KB in a heap
 * snapshot: bench/README.md, "third pass"): here the end
 * comes from the stream itself (SubscriptionEnds), and the hooks are the same
 * objects for every subscription.
 */
function subscriptionPhases(metrics: {
  subscribeDuration: { observe(labels: Labels, seconds: number): void };
  requestDuration: { observe(labels: Labels, seconds: number): void };
  requests: { labels(labels: Labels): { inc(): void } };
  errorResults: { labels(labels: Labels): { inc(count?: number): void } };
  labels: (args: ExecutionArgs) => Labels;
}): { ends: SubscriptionEnds; onSubscribe: NonNullable<Plugin['onSubscribe']> } {
  const countErrors = (args: ExecutionArgs, result: ExecutionResult) => {
    if (!result.errors?.length) return;
    metrics.errorResults.labels({ ...metrics.labels(args), phase: 'execute' }).inc(result.errors.length);
  };
  const onNext = ({ args, result }: { args: ExecutionArgs; result: ExecutionResult }) => countErrors(args, result);
  const streamHooks = { onNext };
  const hooks = {
    onSubscribeResult: ({ args, result }: { args: ExecutionArgs; result: unknown }) => {
      if (isAsyncIterable(result)) return streamHooks;
      countErrors(args, result as ExecutionResult);
      return undefined;
    },
  };
  return {
    onSubscribe: () => hooks,
    ends: {
      ended(args, startedAt, failed) {
        const labels = metrics.labels(args);
        const seconds = (performance.now() - startedAt) / 1000;
        if (failed) metrics.errorResults.labels({ ...labels, phase: 'subscribe' }).inc();
        metrics.requests.labels(labels).inc();
        metrics.requestDuration.observe(labels, seconds);
        metrics.subscribeDuration.observe({ operationType: labels.operationType! }, seconds);
      },
    },
  };
}

/** Whether any field or argument of the schema is deprecated (what graphql_envelop_deprecated_field counts). */
function hasDeprecations(schema: GraphQLSchema): boolean {
  return Object.values(schema.getTypeMap()).some((type) => {
    if (!isObjectType(type) && !isInterfaceType(type) && !isInputObjectType(type)) return false;
    return Object.values(type.getFields()).some(
      (field) => field.deprecationReason != null || ('args' in field && field.args.some((arg: { deprecationReason?: string | null }) => arg.deprecationReason != null)),
    );
  });
}

/** /metrics on a listener of its own (METRICS_PORT), so it can stay off the public edge. */
export function createMetricsServer(registry: Registry): Server {
  return createServer((request, response) => {
    // The request target as sent (it may be any text, even an absolute-form one that is not a URL): only its path counts.
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/metrics' || request.method !== 'GET') {
      response.writeHead(404, { 'x-content-type-options': 'nosniff' }).end();
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType, 'x-content-type-options': 'nosniff' }).end(text),
      () => response.writeHead(500).end(),
    );
  });
}

/** Counts what the retention job removed in this process, by kind (requests, stages, events). */
export function countRetentionPurges(registry: Registry): (batch: PurgeCounts) => void {
  const purged = new Counter({
    name: 'tracker_retention_purged_total',
    help: 'Rows the retention job deleted in this process, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
  for (const kind of ['requests', 'stages', 'events'] as const) purged.inc({ kind }, 0);
  return (batch) => {
    for (const kind of ['requests', 'stages', 'events'] as const) purged.inc({ kind }, batch[kind]);
  };
}
