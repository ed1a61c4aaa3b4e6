/**
 * graphql-yoga on /graphql: context (token → viewer, DataLoaders), document
 * limits (graphql-armor), coded errors, request ids, health and readiness.
 */
import { randomUUID as uuidRope } from 'node:crypto';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { sql } from 'drizzle-orm';
import { GraphQLError, type ExecutionArgs, type ValidationContext } from 'graphql';
import { ServiceError } from '../services/errors.js';
import { createYoga, useReadinessCheck, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Queryable } from '../db/client.js';
import type { Logger } from '../logger.js';
import { LazyLoaders, type GraphQLContext } from '../schema/context.js';
import { buildSchema } from '../schema/index.js';
import type { MutationLimiter } from '../services/limits.js';
import type { RequestStatus } from '../services/pipeline.js';
import { ProvisionedViewers } from '../services/users.js';
import type { Role, Viewer } from '../services/access.js';
import type { LiveDependencies } from '../live/subscriptions.js';
import type { TokenVerifier, VerifiedToken } from './auth.js';
import {
  maskError,
  presentOutsideExecution,
  useServiceErrors,
  useShortRequestParseErrors,
  useValidationErrorCodes,
} from './error-responses.js';
import { graphiqlOptions, graphiqlPage } from './graphiql.js';
import type { Metrics } from './metrics.js';
import { useMutationLimits } from './mutation-limits.js';
import { usePersistedQueries } from './persisted-queries.js';
import { subscribeSharingResults } from '../live/shared-results.js';
import { executeCompiledEvent, useCompiledOperations } from './compiled-operations.js';

// Node's randomUUID() is a rope of some twenty pieces (about 480 B held; flat, 56 B), and an open
// subscription's context keeps its request id as long as it runs.
const randomUUID = () => Buffer.from(uuidRope(), 'latin1').toString('latin1');

// The cost model counts what a document can fetch: each field (1, an object 2)
// times the `first` of the lists around it, with no extra factor per level
// (armor's default 1.5 a level charged a history page of 20 with its events
// as 41,000, more than 20 aliases of trivial fields). A page of 20 requests
// with stages and 20 events each costs about 6,900; 20 pages of 100 with 100
// events each, 1.6 million.
export const DOCUMENT_LIMITS = { depth: 12, aliases: 20, cost: 20_000, tokens: 2_000 };
type DocumentLimit = keyof typeof DOCUMENT_LIMITS;

/**
 * Armor's refusal, as every document limit answers: GRAPHQL_VALIDATION_FAILED,
 * HTTP 400, the limit named (armor's own message, less its misleading
 * "Syntax Error:" prefix). The token limit is counted while parsing, where
 * there is no validation context: it throws; the others are reported as
 * validation errors (thrown, armor's default, they escape the validation
 * result: no code, HTTP 200).
 */
const rejectAs = (limit: DocumentLimit) => ({
  propagateOnRejection: false,
  onReject: [
    (context: ValidationContext | null, error: GraphQLError) => {
      const refusal = new GraphQLError(error.message.replace(/^Syntax Error: /, ''), {
        extensions: { code: 'GRAPHQL_VALIDATION_FAILED', field: 'query', limit, http: { status: 400 } },
      });
      if (!context) throw refusal;
      context.reportError(refusal);
    },
  ],
});

export type GraphQLServerOptions = {
  db: Queryable;
  /** The database's content_request_status values (services/pipeline.ts requestStatuses): ContentRequestStatus's. */
  requestStatuses: readonly RequestStatus[];
  authenticate: Authenticator;
  live: LiveDependencies;
  logger: Logger;
  /** Its plugin records the request metrics (and serves /metrics unless that has a port of its own). */
  metrics: Metrics;
  /** Origins a browser may call from; none: no CORS headers at all. */
  corsOrigins?: string[];
  /** Development tokens to preload in GraphiQL's example tabs. */
  graphiqlTokens?: Partial<Record<Role, string>>;
  /** Per-user mutation budgets; none when absent. */
  mutationLimiter?: MutationLimiter;
};

export type GraphQLServer = YogaServerInstance<Record<string, unknown>, GraphQLContext>;

/** A bearer token (the header's value) to a known, provisioned viewer; a ServiceError if it is not one. */
export type Authenticator = (authorization: string) => Promise<VerifiedToken>;

export function createAuthenticator(db: Queryable, verifyToken: TokenVerifier): Authenticator {
  const provisioned = new ProvisionedViewers();
  return async (authorization) => {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    const verified = await verifyToken(match?.[1] ?? '');
    await provisioned.ensure(db, verified.viewer);
    return verified;
  };
}

/**
 * Yoga logs every error it masks, and a stream's error (a token that expired,
 * a reader cut off) is masked like any other. A ServiceError is an answer to
 * the client, not a fault of the service: logged at debug, not as an error.
 */
function yogaLogger(logger: Logger) {
  const yoga = logger.child({ component: 'yoga' });
  const isAnswer = (error: unknown): boolean =>
    error instanceof ServiceError || (error instanceof GraphQLError && isAnswer(error.originalError));
  return {
    debug: (...args: unknown[]) => yoga.debug(args[0]),
    info: (...args: unknown[]) => yoga.info(args[0]),
    warn: (...args: unknown[]) => yoga.warn(args[0]),
    error: (...args: unknown[]) => (isAnswer(args[0]) ? yoga.debug({ err: args[0] }, 'answered with a coded error') : yoga.error(args[0])),
  };
}

/**
 * Yoga's readiness check, asked only about the requests it can answer. Its
 * hook matches every request's URL against a URLPattern (a polyfill on Node
 * 20: about 2% of a history page's CPU) after two plain tests that already
 * find every URL that pattern matches: its pathname is `/ready`.
 */
function onlyOnReadinessPaths(readiness: Plugin): Plugin {
  const onRequest = readiness.onRequest!.bind(readiness);
  return {
    ...readiness,
    onRequest: (payload) =>
      payload.request.url.endsWith('/ready') || payload.url.pathname === '/ready' ? onRequest(payload) : undefined,
  };
}

/**
 * Whether a document's text may hold a subscription: a subscription operation
 * starts with the word, so a document without it anywhere cannot be one (a
 * fragment or field named with it only errs on the safe side).
 */
export const mayBeSubscription = (query: string): boolean => query.includes('subscription');

// A request's id, kept on the request (a WeakMap entry a request costs the collector more).
const REQUEST_ID = Symbol('request id');
type IdentifiedRequest = Request & { [REQUEST_ID]?: string };

/** What the WebSocket transport hands the context: its connection's viewer, checked at connect. */
export type SocketContext = { socketViewer: Viewer; socketExpiresAt: Date | null };

/** What every request's context shares. */
type RequestScope = Pick<GraphQLContext, 'db' | 'live'>;

// A function of the module, not a closure made per request (tsx defines a name on each closure made).
function contextOf(scope: RequestScope, requestId: string, viewer: Viewer | null, viewerExpiresAt: Date | null = null, hangUp?: AbortSignal): GraphQLContext {
  return { requestId, viewer, viewerExpiresAt, hangUp, db: scope.db, live: scope.live, loaders: new LazyLoaders(scope.db) };
}

export function createGraphQLServer(options: GraphQLServerOptions): GraphQLServer {
  const { db, authenticate, live, logger } = options;
  const requestScope: RequestScope = { db, live };

  // A caller's own id (from a proxy, say) is kept if it looks like one.
  const useRequestIds: Plugin = {
    onRequest: ({ request }) => {
      const given = request.headers.get('x-request-id');
      (request as IdentifiedRequest)[REQUEST_ID] = given && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID();
    },
    onResponse: ({ request, response }) => {
      const id = (request as IdentifiedRequest)[REQUEST_ID];
      if (id) response.headers.set('x-request-id', id);
    },
  };

  // The metrics learn from each subscription's stream when it is over (no wrapper around it).
  // Each event's selection runs compiled once its document is in use (compiled-operations.ts).
  const subscribe = (args: ExecutionArgs) =>
    subscribeSharingResults(args, { ends: options.metrics.subscriptionEnds, execute: executeCompiledEvent });

  const page = graphiqlPage();
  // Not framed, not sniffed anywhere; the page (its development tokens) and
  // anything answered to a bearer of a token never cached.
  const useSecurityHeaders: Plugin = {
    onResponse: ({ request, response }) => {
      const html = response.headers.get('content-type')?.startsWith('text/html');
      response.headers.set('x-content-type-options', 'nosniff');
      response.headers.set(
        'content-security-policy',
        (html && page.contentSecurityPolicy()) || "default-src 'none'; frame-ancestors 'none'",
      );
      if (html || request.headers.has('authorization')) response.headers.set('cache-control', 'no-store');
    },
  };

  const readinessCheck = onlyOnReadinessPaths(
    useReadinessCheck({
      endpoint: '/ready',
      // false, not the error: its message would reach the response body.
      check: async () => {
        try {
          await db.execute(sql`select 1`);
          return true;
        } catch (error) {
          logger.warn({ err: error }, 'readiness check failed');
          return false;
        }
      },
    }),
  );

  return createYoga<Record<string, unknown>, GraphQLContext>({
    schema: buildSchema(options.requestStatuses),
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/health',
    landingPage: false,
    // An allow-list, never a reflected Origin; no credentials: tokens travel in a header, not a cookie.
    // Decided per request: for an unlisted origin yoga would answer `Allow-Origin: null` (which
    // sandboxed pages match) and read an empty list as "any origin".
    cors: (request) => {
      const origin = request.headers.get('origin');
      return origin && options.corsOrigins?.includes(origin)
        ? { origin: [origin], credentials: false, allowedHeaders: ['authorization', 'content-type', 'x-request-id'], methods: ['GET', 'POST'] }
        : false;
    },
    logging: yogaLogger(logger),
    maskedErrors: { maskError: maskError(logger) },
    // The bundled GraphiQL: the page works without reaching a CDN.
    renderGraphiQL: page.renderGraphiQL,
    graphiql: graphiqlOptions(options.graphiqlTokens ?? {}),
    context: async (initial): Promise<GraphQLContext> => {
      const { socketViewer, socketExpiresAt } = initial as Partial<SocketContext>;
      if (socketViewer) return contextOf(requestScope, randomUUID(), socketViewer, socketExpiresAt ?? null);

      const requestId = (initial.request as IdentifiedRequest)[REQUEST_ID] ?? randomUUID();
      const authorization = initial.request.headers.get('authorization');
      if (!authorization) return contextOf(requestScope, requestId, null);
      try {
        const { viewer, expiresAt } = await authenticate(authorization);
        // Only a subscription's stream ends on a hang-up; a document without the word (a plain
        // query or mutation) is not given the signal, which plain POSTs make only when read.
        const query = initial.params?.query;
        const hangUp = typeof query === 'string' && !mayBeSubscription(query) ? undefined : initial.request.signal;
        return contextOf(requestScope, requestId, viewer, expiresAt, hangUp);
      } catch (error) {
        // Coded (or masked and logged) here, where the request's id is known.
        throw presentOutsideExecution(error, requestId, logger);
      }
    },
    plugins: [
      useRequestIds,
      useSecurityHeaders,
      useShortRequestParseErrors(),
      useServiceErrors(logger),
      usePersistedQueries(),
      maxTokensPlugin({ n: DOCUMENT_LIMITS.tokens, ...rejectAs('tokens') }),
      maxDepthPlugin({ n: DOCUMENT_LIMITS.depth, ignoreIntrospection: true, flattenFragments: true, ...rejectAs('depth') }),
      maxAliasesPlugin({ n: DOCUMENT_LIMITS.aliases, ...rejectAs('aliases') }),
      costLimitPlugin({ maxCost: DOCUMENT_LIMITS.cost, depthCostFactor: 1, ignoreIntrospection: true, ...rejectAs('cost') }),
      useValidationErrorCodes(),
      ...(options.mutationLimiter ? [useMutationLimits(options.mutationLimiter)] : []),
      options.metrics.plugin,
      useCompiledOperations(),
      // Subscribers of one event with the same operation and variables share its execution.
      { onSubscribe: ({ setSubscribeFn }) => setSubscribeFn(subscribe) } satisfies Plugin,
      readinessCheck,
    ],
  });
}
