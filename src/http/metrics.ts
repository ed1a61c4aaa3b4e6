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
  getOperationAST,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { EventHub } from '../live/hub.js';
import type { SubscriptionEnds } from '../live/shared-results.js';
import type { PurgeCounts } from '../services/retention.js';
import { rememberLast } from './remember-last.js';
import { registerPipelineMetrics, type PipelineMetricsOptions } from './pipeline-metrics.js';
import { SeriesHistogram, type HistogramSeries } from './series-histogram.js';

/** Faults of the whole process that main.ts catches, counted here. */
export type ProcessFaults = { unhandledRejections: number };

/** How many distinct operation names get a label of their own; later ones are counted as OTHER_OPERATION. */
export const MAX_OPERATION_NAMES = 50;
export const OTHER_OPERATION = 'other';
const KNOWN_PATHS = new Set(['/graphql']);

/**
 * A request URL's `url` label: its path if a known one, else `other`
 * (parsing each request's URL was a third of the metrics' own share of a
 * history page's CPU: the last one's label is kept).
 */
const pathLabeller = () =>
  rememberLast((url) => {
    const path = new URL(url).pathname;
    return KNOWN_PATHS.has(path) ? path : 'other';
  });

/** First come, first kept, up to the cap: the shipped examples' names are kept from the start. */
class OperationNames {
  private readonly seen: Set<string>;
  private readonly labelSets = new Map<string, OperationLabels>();
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
  /** The labels of an operation, made once per label set (at most the names kept by four types), not per request. */
  labels(name: string | undefined, operationType: string): OperationLabels {
    const operationName = this.label(name);
    const key = `${operationType} ${operationName}`;
    let labels = this.labelSets.get(key);
    if (!labels) {
      labels = { all: { operationName, operationType }, byType: { operationType } };
      this.labelSets.set(key, labels);
    }
    return labels;
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

  // GraphQL's request metrics, under the names (and help, labels, buckets) yoga's Prometheus
  // plugin gives them, so dashboards made for yoga read them; observed by requestMetricsPlugin.
  const labelNames = ['operationName', 'operationType'];
  const histogram = (name: string, help: string, labels: string[]) => new SeriesHistogram(name, help, labels, registry);
  const count = (name: string, help: string, labels: string[]) => new Counter({ name, help, labelNames: labels, registers: [registry] });
  // The phases by operation type only: per-operation timing is graphql_envelop_request_duration's
  // (each histogram label set is 14 lines, and /metrics must stay small).
  const requestMetrics: RequestMetrics = {
    requestDuration: histogram('graphql_envelop_request_duration', 'Time spent on running the GraphQL operation from parse to execute', labelNames),
    requests: count('graphql_envelop_request', 'Counts the amount of GraphQL requests executed through Envelop', labelNames),
    // No `path` label: a response path holds the client's aliases and list indexes.
    errorResults: count('graphql_envelop_error_result', 'Counts the amount of errors reported from all phases', [...labelNames, 'phase']),
    subscribe: histogram('graphql_envelop_phase_subscribe', 'Time spent on running the GraphQL "subscribe" function', ['operationType']),
    parse: histogram('graphql_envelop_phase_parse', 'Time spent on running GraphQL "parse" function', ['operationType']),
    validate: histogram('graphql_envelop_phase_validate', 'Time spent on running GraphQL "validate" function', ['operationType']),
    context: histogram('graphql_envelop_phase_context', 'Time spent on building the GraphQL context', ['operationType']),
    execute: histogram('graphql_envelop_phase_execute', 'Time spent on running the GraphQL "execute" function', ['operationType']),
    // The schema's own names: bounded.
    deprecatedFields: count('graphql_envelop_deprecated_field', 'Counts the amount of deprecated fields used in selection sets', [...labelNames, 'fieldName', 'typeName']),
    httpDuration: histogram('graphql_yoga_http_duration', 'Time spent on HTTP connection', [...labelNames, 'method', 'statusCode', 'url']),
    schemaChanges: count('graphql_envelop_schema_change', 'Counts the amount of schema changes', []),
  };
  const names = new OperationNames(options.knownOperations);
  const subscriptions = subscriptionPhases(requestMetrics, (args) => names.labels(operationNameOf(args), 'subscription'));
  const directRequests = new Counter({
    name: 'tracker_http_direct_requests_total',
    help: 'Plain POST /graphql requests answered without yoga\'s Fetch-API adapter (the rest of /graphql is yoga\'s)',
    registers: [registry],
  });
  return {
    registry,
    close: closePipelineMetrics,
    countDirectRequest: () => directRequests.inc(),
    subscriptionEnds: subscriptions.ends,
    plugin: {
      ...requestMetricsPlugin(requestMetrics, { names, registry, endpoint: options.endpoint }),
      onSubscribe: subscriptions.onSubscribe,
    },
  };
}

type RequestMetrics = {
  requestDuration: SeriesHistogram;
  requests: Counter<string>;
  errorResults: Counter<string>;
  subscribe: SeriesHistogram;
  parse: SeriesHistogram;
  validate: SeriesHistogram;
  context: SeriesHistogram;
  execute: SeriesHistogram;
  deprecatedFields: Counter<string>;
  httpDuration: SeriesHistogram;
  schemaChanges: Counter<string>;
};

/** An operation's labels, the whole set and by type alone, and (once it ran) its histograms' series. */
type OperationLabels = { all: { operationName: string; operationType: string }; byType: { operationType: string }; series?: OperationSeries };

/** The series a query or mutation observes, found once per operation; `http` by method, status and path. */
type OperationSeries = { parse: HistogramSeries; validate: HistogramSeries; context: HistogramSeries; execute: HistogramSeries; duration: HistogramSeries; http: Map<string, HistogramSeries> };

// A request's operation, and when its HTTP request began, kept on its context and request: a
// WeakMap entry per request (as the plugin kept them) is a request's worth of work for the collector.
const OPERATION = Symbol('the operation a request runs, as metric labels');
const PHASE_STARTED = Symbol('when the phase the request is in began');
const HTTP_SEEN = Symbol('when the request began, and its operation');
type HttpSeen = { startedAt: number; method: string; url: string; operation?: OperationLabels };
type SeenRequest = Request & { [HTTP_SEEN]?: HttpSeen };
type LabelledContext = { [OPERATION]?: OperationLabels; [PHASE_STARTED]?: number; params?: { operationName?: string | null }; request?: SeenRequest };

const secondsSince = (startedAt: number) => (performance.now() - startedAt) / 1000;

/**
 * What yoga's Prometheus plugin observed for a request, the way it did
 * (phases, requests, errors by phase, deprecated fields, schema changes,
 * graphql_yoga_http_duration from arrival to response for a document that
 * parsed, and /metrics on the main port unless it has its own), without its
 * per-request maps and label objects (bench/README.md, "tenth pass"). The
 * context phase is timed from its start to its end (the plugin observed it as
 * it began: always 0).
 */
function requestMetricsPlugin(
  metrics: RequestMetrics,
  options: { names: OperationNames; registry: Registry; endpoint: boolean },
): Plugin {
  let typeInfo: TypeInfo | undefined;
  const countedSchemas = new WeakSet<GraphQLSchema>();
  const pathLabel = pathLabeller();
  const countErrors = (labels: OperationLabels, result: { errors?: readonly unknown[] }) => {
    if (result.errors?.length) metrics.errorResults.inc({ ...labels.all, phase: 'execute' }, result.errors.length);
  };
  const parseDone = ({ context, result }: { context: unknown; result: unknown }) => {
    const labelled = context as LabelledContext;
    const seconds = secondsSince(labelled[PHASE_STARTED]!);
    if (!result || result instanceof Error) {
      // A document that does not parse has no operation to name.
      metrics.parse.observe({ operationType: 'unknown' }, seconds);
      metrics.errorResults.inc({ operationName: 'Anonymous', operationType: 'unknown', phase: 'parse' });
      return;
    }
    const document = result as DocumentNode;
    const requested = labelled.params?.operationName ?? undefined;
    const operation = getOperationAST(document, requested);
    const labels = options.names.labels(requested || operation?.name?.value, operation?.operation ?? 'unknown');
    labelled[OPERATION] = labels;
    const seen = labelled.request?.[HTTP_SEEN];
    if (seen) seen.operation = labels;
    seriesOf(labels).parse.observe(seconds);
    if (typeInfo) {
      for (const { fieldName, typeName } of deprecatedFieldsOf(document, typeInfo)) metrics.deprecatedFields.inc({ ...labels.all, fieldName, typeName });
    }
  };
  const validateDone = ({ context, valid }: { context: unknown; valid: boolean }) => {
    const labelled = context as LabelledContext;
    const labels = labelled[OPERATION]!;
    seriesOf(labels).validate.observe(secondsSince(labelled[PHASE_STARTED]!));
    if (!valid) metrics.errorResults.inc({ ...labels.all, phase: 'validate' });
  };
  const contextDone = ({ context }: { context: unknown }) => {
    const labelled = context as LabelledContext;
    seriesOf(labelled[OPERATION]!).context.observe(secondsSince(labelled[PHASE_STARTED]!));
  };
  const executed = (labels: OperationLabels, startedAt: number) => {
    const seconds = secondsSince(startedAt);
    const series = seriesOf(labels);
    series.execute.observe(seconds);
    series.duration.observe(seconds);
    metrics.requests.inc(labels.all);
  };
  const executeHooks = {
    onExecuteDone: ({ args, result }: { args: ExecutionArgs; result: ExecutionResult | AsyncIterable<ExecutionResult> }) => {
      const labelled = args.contextValue as LabelledContext;
      const labels = labelled[OPERATION]!;
      const startedAt = labelled[PHASE_STARTED]!;
      // A stream (incremental delivery) ends later: its own hooks, made for it.
      if (isAsyncIterable(result)) return { onNext: ({ result: next }: { result: { errors?: readonly unknown[] } }) => countErrors(labels, next), onEnd: () => executed(labels, startedAt) };
      countErrors(labels, result);
      executed(labels, startedAt);
      return undefined;
    },
  };
  const seriesOf = (labels: OperationLabels): OperationSeries =>
    (labels.series ??= {
      parse: metrics.parse.seriesFor(labels.byType),
      validate: metrics.validate.seriesFor(labels.byType),
      context: metrics.context.seriesFor(labels.byType),
      execute: metrics.execute.seriesFor(labels.byType),
      duration: metrics.requestDuration.seriesFor(labels.all),
      http: new Map(),
    });
  return {
    onSchemaChange: ({ schema }) => {
      if (!countedSchemas.has(schema)) metrics.schemaChanges.inc();
      countedSchemas.add(schema);
      // Each document is walked for deprecated fields only when the schema has some to find.
      typeInfo = hasDeprecations(schema) ? new TypeInfo(schema) : undefined;
    },
    onPluginInit: ({ registerContextErrorHandler }) => {
      registerContextErrorHandler(({ context }) => {
        const labels = (context as LabelledContext)[OPERATION];
        if (labels) metrics.errorResults.inc({ ...labels.all, phase: 'context' });
      });
    },
    onRequest: ({ request, url, endResponse, fetchAPI }) => {
      if (options.endpoint && url.pathname === '/metrics') {
        return options.registry.metrics().then((text) => {
          endResponse(new fetchAPI.Response(text, { headers: { 'content-type': options.registry.contentType } }));
        });
      }
      (request as SeenRequest)[HTTP_SEEN] = { startedAt: performance.now(), method: request.method, url: request.url };
      return undefined;
    },
    // Each phase's start is kept on the context and its end is one function for every request:
    // phases run one after another, and a closure made per request and phase is a name
    // defined on it under tsx.
    onParse: ({ context }) => {
      (context as LabelledContext)[PHASE_STARTED] = performance.now();
      return parseDone;
    },
    onValidate: ({ context }) => {
      const labelled = context as LabelledContext;
      if (!labelled[OPERATION]) return undefined;
      labelled[PHASE_STARTED] = performance.now();
      return validateDone;
    },
    onContextBuilding: ({ context }) => {
      const labelled = context as LabelledContext;
      if (!labelled[OPERATION]) return undefined;
      labelled[PHASE_STARTED] = performance.now();
      return contextDone;
    },
    onExecute: ({ args }) => {
      const labelled = args.contextValue as LabelledContext;
      if (!labelled[OPERATION]) return undefined;
      labelled[PHASE_STARTED] = performance.now();
      return executeHooks;
    },
    onResponse: ({ request, response }) => {
      const seen = (request as SeenRequest)[HTTP_SEEN];
      if (!seen?.operation) return;
      const method = seen.method === 'GET' || seen.method === 'POST' ? seen.method : 'other';
      // The path only, never the query string (it may carry a token).
      const url = pathLabel(seen.url);
      const byResponse = seriesOf(seen.operation).http;
      const key = `${method} ${response.status} ${url}`;
      let series = byResponse.get(key);
      if (!series) {
        series = metrics.httpDuration.seriesFor({ ...seen.operation.all, method, statusCode: response.status, url });
        byResponse.set(key, series);
      }
      series.observe(secondsSince(seen.startedAt));
    },
  };
}

/** The deprecated fields and arguments a document uses, named as the plugin named them. */
export function deprecatedFieldsOf(document: DocumentNode, typeInfo: TypeInfo): { fieldName: string; typeName: string }[] {
  const found: { fieldName: string; typeName: string }[] = [];
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Argument: () => {
        const argument = typeInfo.getArgument();
        const field = typeInfo.getFieldDef();
        // An argument is named with its field (the plugin's choice: a mutation's name, say).
        if (field && argument?.deprecationReason != null) found.push({ fieldName: argument.name, typeName: field.name });
      },
      Field: () => {
        const field = typeInfo.getFieldDef();
        if (field?.deprecationReason != null) found.push({ fieldName: field.name, typeName: typeInfo.getParentType()?.name ?? '' });
      },
    }),
  );
  return found;
}

/** The name the plugin labels an operation with: the request's operationName, else the document's. */
function operationNameOf(args: ExecutionArgs): string | undefined {
  return args.operationName || getOperationAST(args.document, args.operationName)?.name?.value;
}

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
function subscriptionPhases(
  metrics: Pick<RequestMetrics, 'subscribe' | 'requestDuration' | 'requests' | 'errorResults'>,
  labelsOf: (args: ExecutionArgs) => OperationLabels,
): { ends: SubscriptionEnds; onSubscribe: NonNullable<Plugin['onSubscribe']> } {
  const countErrors = (args: ExecutionArgs, result: ExecutionResult) => {
    if (result.errors?.length) metrics.errorResults.inc({ ...labelsOf(args).all, phase: 'execute' }, result.errors.length);
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
        const labels = labelsOf(args);
        const seconds = secondsSince(startedAt);
        if (failed) metrics.errorResults.inc({ ...labels.all, phase: 'subscribe' });
        metrics.requests.inc(labels.all);
        metrics.requestDuration.observe(labels.all, seconds);
        metrics.subscribe.observe(labels.byType, seconds);
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
