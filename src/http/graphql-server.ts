/**
 * graphql-yoga on /graphql: context (token → viewer, DataLoaders), document
 * limits (graphql-armor), coded errors, request ids, health and readiness.
 */
import { randomUUID } from 'node:crypto';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { sql } from 'drizzle-orm';
import type { GraphQLError, ValidationContext } from 'graphql';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, useReadinessCheck, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Queryable } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../schema/context.js';
import { buildSchema } from '../schema/index.js';
import { createLoaders, type Loaders } from '../services/loaders.js';
import { ProvisionedViewers } from '../services/users.js';
import type { Role, Viewer } from '../services/viewer.js';
import type { LiveDependencies } from '../live/subscriptions.js';
import type { TokenVerifier, VerifiedToken } from './auth.js';
import {
  maskError,
  presentOutsideExecution,
  useServiceErrors,
  useShortRequestParseErrors,
  useValidationErrorCodes,
} from './errors.js';
import { graphiqlOptions } from './graphiql.js';
import { createMetricsPlugin } from './metrics.js';

// armor's cost grows with nesting (×1.5 a level): a request with its stages and
// event log costs about 5,000; these limits leave room for that, not for abuse.
export const DOCUMENT_LIMITS = { depth: 12, aliases: 20, cost: 20_000, tokens: 2_000 };

// Armor throws a refusal out of validation by default, where it escapes the
// validation result: no code, HTTP 200. Reported instead, it is a validation
// error like any other (GRAPHQL_VALIDATION_FAILED, HTTP 400).
const reportRejection = {
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
};

export type GraphQLServerOptions = {
  db: Queryable;
  authenticate: Authenticator;
  live: LiveDependencies;
  logger: Logger;
  /** Development tokens to preload in GraphiQL's example tabs. */
  graphiqlTokens?: Partial<Record<Role, string>>;
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

/** What the WebSocket transport hands the context: its connection's viewer, checked at connect. */
export type SocketContext = { socketViewer: Viewer };

export function createGraphQLServer(options: GraphQLServerOptions): GraphQLServer {
  const { db, authenticate, live, logger } = options;
  const requestIds = new WeakMap<Request, string>();

  // A caller's own id (from a proxy, say) is kept if it looks like one.
  const useRequestIds: Plugin = {
    onRequest: ({ request }) => {
      const given = request.headers.get('x-request-id');
      requestIds.set(request, given && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID());
    },
    onResponse: ({ request, response }) => {
      const id = requestIds.get(request);
      if (id) response.headers.set('x-request-id', id);
    },
  };

  return createYoga<Record<string, unknown>, GraphQLContext>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/health',
    landingPage: false,
    logging: logger.child({ component: 'yoga' }),
    maskedErrors: { maskError: maskError(logger) },
    // The bundled GraphiQL: the page works without reaching a CDN.
    renderGraphiQL,
    graphiql: graphiqlOptions(options.graphiqlTokens ?? {}),
    context: async (initial): Promise<GraphQLContext> => {
      // Loaders and the child logger are made on first use: a subscription's
      // context lives as long as it does, and most never touch them.
      const make = (requestId: string, viewer: Viewer | null): GraphQLContext => {
        let loaders: Loaders | undefined;
        let requestLogger: Logger | undefined;
        return {
          requestId,
          viewer,
          db,
          live,
          get loaders() {
            return (loaders ??= createLoaders(db));
          },
          get logger() {
            return (requestLogger ??= logger.child({ requestId }));
          },
        };
      };
      const { socketViewer } = initial as Partial<SocketContext>;
      if (socketViewer) return make(randomUUID(), socketViewer);

      const requestId = requestIds.get(initial.request) ?? randomUUID();
      const authorization = initial.request.headers.get('authorization');
      if (!authorization) return make(requestId, null);
      try {
        return make(requestId, (await authenticate(authorization)).viewer);
      } catch (error) {
        // Coded (or masked and logged) here, where the request's id is known.
        throw presentOutsideExecution(error, requestId, logger);
      }
    },
    plugins: [
      useRequestIds,
      useShortRequestParseErrors(),
      useServiceErrors(logger),
      maxTokensPlugin({ n: DOCUMENT_LIMITS.tokens }),
      maxDepthPlugin({ n: DOCUMENT_LIMITS.depth, ignoreIntrospection: true, flattenFragments: true, ...reportRejection }),
      maxAliasesPlugin({ n: DOCUMENT_LIMITS.aliases, ...reportRejection }),
      costLimitPlugin({ maxCost: DOCUMENT_LIMITS.cost, ignoreIntrospection: true, ...reportRejection }),
      useValidationErrorCodes(),
      createMetricsPlugin(live.hub),
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
    ],
  });
}
