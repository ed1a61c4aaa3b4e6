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
import { createYoga, useReadinessCheck, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Queryable } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../schema/context.js';
import { buildSchema } from '../schema/index.js';
import { createLoaders } from '../services/loaders.js';
import { ProvisionedViewers } from '../services/users.js';
import type { Role } from '../services/viewer.js';
import type { TokenVerifier } from './auth.js';
import { maskError, presentOutsideExecution, useServiceErrors, useValidationErrorCodes } from './errors.js';
import { graphiqlTabs } from './graphiql.js';

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
  verifyToken: TokenVerifier;
  logger: Logger;
  /** Development tokens to preload in GraphiQL's example tabs. */
  graphiqlTokens?: Partial<Record<Role, string>>;
};

export type GraphQLServer = YogaServerInstance<Record<string, unknown>, GraphQLContext>;

export function createGraphQLServer(options: GraphQLServerOptions): GraphQLServer {
  const { db, verifyToken, logger } = options;
  const provisioned = new ProvisionedViewers();
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
    graphiql: {
      title: 'Content request tracker',
      defaultTabs: graphiqlTabs(options.graphiqlTokens ?? {}),
    },
    context: async ({ request }): Promise<GraphQLContext> => {
      const requestId = requestIds.get(request) ?? randomUUID();
      const authorization = request.headers.get('authorization');
      let viewer = null;
      if (authorization) {
        // Coded (or masked and logged) here, where the request's id is known.
        try {
          const match = /^Bearer\s+(\S+)$/i.exec(authorization);
          viewer = await verifyToken(match?.[1] ?? '');
          await provisioned.ensure(db, viewer);
        } catch (error) {
          throw presentOutsideExecution(error, requestId, logger);
        }
      }
      return { requestId, viewer, db, loaders: createLoaders(db), logger: logger.child({ requestId }) };
    },
    plugins: [
      useRequestIds,
      useServiceErrors(logger),
      maxTokensPlugin({ n: DOCUMENT_LIMITS.tokens }),
      maxDepthPlugin({ n: DOCUMENT_LIMITS.depth, ignoreIntrospection: true, flattenFragments: true, ...reportRejection }),
      maxAliasesPlugin({ n: DOCUMENT_LIMITS.aliases, ...reportRejection }),
      costLimitPlugin({ maxCost: DOCUMENT_LIMITS.cost, ignoreIntrospection: true, ...reportRejection }),
      useValidationErrorCodes(),
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
