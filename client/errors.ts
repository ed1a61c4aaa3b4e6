/**
 * The one error type the client throws: the server's `extensions.code`
 * (NOT_FOUND, FORBIDDEN, UNAUTHENTICATED …) or one of the client's own
 * (CONNECTION_LOST, HTTP_ERROR), with the server's message and extensions.
 */
export type TrackerErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'INVALID_TRANSITION'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'SERVICE_UNAVAILABLE'
  | 'CONNECTION_LOST'
  | 'HTTP_ERROR'
  | (string & {});

export class TrackerError extends Error {
  override name = 'TrackerError';
  constructor(
    readonly code: TrackerErrorCode,
    message: string,
    /** The GraphQL error's extensions as the server sent them (code included). */
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export type GraphQLErrorLike = { message?: unknown; extensions?: Record<string, unknown> };

/** The first of a response's GraphQL errors, as a TrackerError carrying its code. */
export function fromGraphQLErrors(errors: readonly GraphQLErrorLike[]): TrackerError {
  const first = errors[0] ?? {};
  const extensions = first.extensions ?? {};
  const code = typeof extensions.code === 'string' ? extensions.code : 'INTERNAL_SERVER_ERROR';
  return new TrackerError(code, String(first.message ?? 'the server returned an error'), extensions);
}

export const connectionLost = (cause: unknown) =>
  new TrackerError('CONNECTION_LOST', `the connection to the service was lost: ${describe(cause)}`);

function describe(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  const close = cause as { code?: unknown; reason?: unknown } | null;
  if (close && typeof close.code === 'number') return `closed with ${close.code} ${String(close.reason ?? '')}`.trim();
  return String(cause);
}

// The answer will not change by asking again: the stream ends with the error.
const FINAL_CODES: ReadonlySet<string> = new Set([
  'NOT_FOUND',
  'FORBIDDEN',
  'BAD_USER_INPUT',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
]);

/** True when resubscribing cannot help; anything else (a lost connection, an expired token, CONFLICT) is retried. */
export const isFinal = (error: TrackerError) => FINAL_CODES.has(error.code);
