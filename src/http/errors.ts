/**
 * What a client sees when something goes wrong. ServiceErrors become
 * GraphQL errors with `extensions.code`; anything unexpected is logged once,
 * with the request's id, and masked.
 */
import { GraphQLError } from 'graphql';
import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../schema/context.js';
import { ServiceError, type ErrorCode } from '../services/errors.js';

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = { UNAUTHENTICATED: 401 };

export function toCodedError(error: ServiceError, located?: GraphQLError): GraphQLError {
  return new GraphQLError(error.message, {
    ...(located ? { nodes: located.nodes, source: located.source, positions: located.positions, path: located.path } : {}),
    extensions: {
      code: error.code,
      ...error.details,
      ...(HTTP_STATUS[error.code] ? { http: { status: HTTP_STATUS[error.code] } } : {}),
    },
  });
}

function present(error: GraphQLError, context: Partial<GraphQLContext>, logger: Logger): GraphQLError {
  const original = error.originalError;
  if (original instanceof ServiceError) return toCodedError(original, error);
  if (!original || original instanceof GraphQLError) return error; // parse, validation, coded errors
  const requestId = context.requestId;
  logger.error({ err: original, requestId, path: error.path?.join('.') }, 'unexpected error while resolving');
  return new GraphQLError('Unexpected error.', {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions: { code: 'INTERNAL_SERVER_ERROR', requestId },
  });
}

/** For execution results, queries and subscriptions alike (the context is known here). */
export function useServiceErrors(logger: Logger): Plugin<GraphQLContext> {
  const onDone = (contextValue: Partial<GraphQLContext>) => (payload: Parameters<Parameters<typeof handleStreamOrSingleExecutionResult>[1]>[0]) => {
    const errors = payload.result.errors;
    if (!errors?.length) return;
    payload.setResult({ ...payload.result, errors: errors.map((e) => present(e as GraphQLError, contextValue, logger)) });
  };
  return {
    onExecute: ({ args }) => ({
      onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, onDone(args.contextValue)),
    }),
    onSubscribe: ({ args }) => ({
      onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, onDone(args.contextValue)),
    }),
  };
}

/** Yoga's own masking, for errors outside execution (in building the context, say). */
export function maskError(logger: Logger) {
  return (error: unknown): Error => {
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    if (original instanceof ServiceError) return toCodedError(original);
    if (original instanceof GraphQLError) return original;
    logger.error({ err: original }, 'unexpected error outside execution');
    return new GraphQLError('Unexpected error.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  };
}

/**
 * Documents refused before execution (unknown fields, wrong argument types,
 * the depth / alias / cost limits) carry GRAPHQL_VALIDATION_FAILED, so every
 * error a client sees has a code.
 */
export function useValidationErrorCodes(): Plugin {
  return {
    onValidate: () => ({ result, setResult }) => {
      if (!result.length) return;
      setResult(
        result.map((error) =>
          error.extensions?.code
            ? error
            : new GraphQLError(error.message, {
                nodes: error.nodes,
                source: error.source,
                positions: error.positions,
                extensions: { ...error.extensions, code: 'GRAPHQL_VALIDATION_FAILED' },
              }),
        ),
      );
    },
  };
}
