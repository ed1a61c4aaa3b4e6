/**
 * What a client sees when something goes wrong. ServiceErrors become
 * GraphQL errors with `extensions.code`; anything unexpected is logged once,
 * with the request's id, and masked.
 */
import { GraphQLError } from 'graphql';
import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../schema/context.js';
import { fromDatabaseError, operatorHint, ServiceError, type ErrorCode } from '../services/errors.js';

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = { UNAUTHENTICATED: 401, RATE_LIMITED: 429, SERVICE_UNAVAILABLE: 503 };

/** A new error with `message` and `extensions`, at the place in the document `located` points to. */
function errorAt(located: GraphQLError | undefined, message: string, extensions: Record<string, unknown>): GraphQLError {
  return new GraphQLError(message, {
    ...(located ? { nodes: located.nodes, source: located.source, positions: located.positions, path: located.path } : {}),
    extensions,
  });
}

export function toCodedError(error: ServiceError, located?: GraphQLError): GraphQLError {
  return errorAt(located, error.message, {
    code: error.code,
    ...error.details,
    ...(HTTP_STATUS[error.code] ? { http: { status: HTTP_STATUS[error.code] } } : {}),
  });
}

function present(error: GraphQLError, context: Partial<GraphQLContext>, logger: Logger): GraphQLError {
  const original = error.originalError;
  if (original instanceof ServiceError) return toCodedError(original, error);
  if (!original || original instanceof GraphQLError) {
    // Refused before any resolver ran (a variable of the wrong type or shape): the caller's input.
    const code = error.extensions?.code ?? 'BAD_USER_INPUT';
    if (!error.path && code === 'BAD_USER_INPUT') {
      const field = error.extensions?.field ?? variableField(error.message);
      if (!error.extensions?.code || (field && !error.extensions.field)) {
        return errorAt(error, error.message, { ...error.extensions, code, ...(field ? { field } : {}) });
      }
    }
    return error; // parse, validation, coded errors
  }
  const mapped = fromDatabase(original, context.requestId, logger);
  if (mapped) return toCodedError(mapped, error);
  return unexpected(original, context.requestId, logger, error);
}

/**
 * A database error thrown outside inTransaction (a plain read, the context's
 * user lookup) that the services' mapping codes: a lost connection is
 * SERVICE_UNAVAILABLE, not a bug. Logged as a warning, without its values.
 */
function fromDatabase(error: unknown, requestId: string | undefined, logger: Logger): ServiceError | undefined {
  const mapped = fromDatabaseError(error);
  if (!(mapped instanceof ServiceError)) return undefined;
  logger.warn({ err: error, requestId, code: mapped.code }, `database error answered as ${mapped.code}`);
  return mapped;
}

/**
 * The variable (and the path inside it) graphql-js names when it refuses a
 * variable's value: `Variable "$filter" got invalid value … at "filter.createdAfter"; …`.
 */
function variableField(message: string): string | undefined {
  const match = /^Variable "\$(\w+)" got invalid value .*? at "([\w.[\]]+)"; /s.exec(message) ?? /^Variable "\$(\w+)" got invalid value /.exec(message);
  return match ? (match[2] ?? match[1]) : undefined;
}

/** Logs an unexpected error once, with the request's id, and returns the masked error the client sees. */
export function unexpected(error: unknown, requestId: string | undefined, logger: Logger, located?: GraphQLError): GraphQLError {
  const hint = operatorHint(error);
  logger.error(
    { err: error, requestId, ...(located?.path ? { path: located.path.join('.') } : {}), ...(hint ? { hint } : {}) },
    located?.path ? 'unexpected error while resolving' : 'unexpected error outside execution',
  );
  return errorAt(located, 'Unexpected error.', { code: 'INTERNAL_SERVER_ERROR', ...(requestId ? { requestId } : {}) });
}

/** A GraphQLError all the way down: nothing unexpected underneath to hide. */
function isOriginalGraphQLError(error: unknown): error is GraphQLError {
  return error instanceof GraphQLError && (error.originalError == null || isOriginalGraphQLError(error.originalError));
}

/**
 * What an error thrown outside execution (building the context) becomes,
 * with the request's id known: a coded error, or a masked one logged once.
 */
export function presentOutsideExecution(error: unknown, requestId: string, logger: Logger): GraphQLError {
  if (error instanceof ServiceError) return toCodedError(error);
  if (isOriginalGraphQLError(error)) return error;
  const mapped = fromDatabase(error, requestId, logger);
  if (mapped) return toCodedError(mapped);
  return unexpected(error, requestId, logger);
}

/** For execution results, queries and subscriptions alike (the context is known here). */
export function useServiceErrors(logger: Logger): Plugin<GraphQLContext> {
  const onDone = (payload: Parameters<Parameters<typeof handleStreamOrSingleExecutionResult>[1]>[0]) => {
    const errors = payload.result.errors;
    if (!errors?.length) return;
    const context = payload.args.contextValue as Partial<GraphQLContext>;
    payload.setResult({ ...payload.result, errors: errors.map((e) => present(e as GraphQLError, context, logger)) });
  };
  const onResult = (payload: Parameters<typeof handleStreamOrSingleExecutionResult<GraphQLContext>>[0]) =>
    handleStreamOrSingleExecutionResult(payload, onDone);
  // The same hooks for every operation, no closure each: an open subscription keeps what its hook returned.
  const executeHooks = { onExecuteDone: onResult };
  const subscribeHooks = { onSubscribeResult: onResult };
  return {
    onExecute: () => executeHooks,
    onSubscribe: () => subscribeHooks,
  };
}

/**
 * Yoga's own masking, for every error it returns. GraphQL errors (parse,
 * validation, variables, coded or already masked ones) pass unchanged: the
 * same object, so yoga neither logs them nor loses their message, locations
 * or HTTP status.
 */
export function maskError(logger: Logger) {
  return (error: unknown): Error => {
    if (isOriginalGraphQLError(error)) return error;
    const original = error instanceof GraphQLError ? error.originalError : error;
    const located = error instanceof GraphQLError ? error : undefined;
    if (original instanceof ServiceError) return toCodedError(original, located);
    const mapped = fromDatabase(original, undefined, logger);
    if (mapped) return toCodedError(mapped, located);
    return unexpected(original, undefined, logger, located);
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
          error.extensions?.code ? error : errorAt(error, error.message, { ...error.extensions, code: 'GRAPHQL_VALIDATION_FAILED' }),
        ),
      );
    },
  };
}

/**
 * A body, or GET/form parameters, that is not JSON. Yoga's parser keeps
 * JSON.parse's message (which quotes the input, all 10 MB of it) in the
 * error's extensions, and a SyntaxError from `variables` in a URL would be
 * masked and logged as unexpected. Either becomes a short BAD_REQUEST, HTTP
 * 400, quoting nothing.
 */
export function useShortRequestParseErrors(): Plugin {
  const badRequest = () =>
    new GraphQLError('The request is not valid JSON (the body, or the variables or extensions parameter).', {
      extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
    });
  return {
    onRequestParse: ({ requestParser, setRequestParser }) => {
      if (!requestParser) return;
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (error) {
          const fromJsonParse =
            error instanceof SyntaxError ||
            (error instanceof GraphQLError && error.extensions?.code === 'BAD_REQUEST' && 'originalError' in error.extensions);
          throw fromJsonParse ? badRequest() : error;
        }
      });
    },
  };
}
