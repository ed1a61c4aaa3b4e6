/**
 * Errors a caller can act on, each with a stable code. The GraphQL layer turns
 * them into `extensions.code`; anything else is a bug and gets masked there.
 */
export const errorCodes = [
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'INVALID_TRANSITION',
  'CONFLICT',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export class ServiceError extends Error {
  override name = 'ServiceError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra machine-readable facts, e.g. the offending field. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const badInput = (field: string, problem: string) =>
  new ServiceError('BAD_USER_INPUT', `${field}: ${problem}`, { field });

/** Out of reach and absent answer alike, so nobody can probe for others' ids. */
export const notFound = (what: string, id: string) =>
  new ServiceError('NOT_FOUND', `${what} ${id} was not found`);

/** The SQLSTATE of a PostgreSQL error, through Drizzle's wrapping (`cause`). */
export function sqlState(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

function databaseMessage(error: unknown): string {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (sqlState(e) && !(e as { cause?: unknown }).cause) return (e as Error).message;
  }
  return (error as Error).message;
}

/**
 * The connection went away under the statement: the server terminated the
 * backend (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
 * now: failover, a pooler restart, pg_terminate_backend), a connection
 * exception (class 08), or the socket closed with no SQLSTATE at all (pg's
 * "Connection terminated"). Nothing about the request was wrong: worth retrying.
 */
export function isConnectionLost(error: unknown): boolean {
  const state = sqlState(error);
  if (state) return state === '57P01' || state === '57P02' || state === '57P03' || state.startsWith('08');
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof Error && /^Connection terminated\b/.test(e.message)) return true;
  }
  return false;
}

/**
 * What an operator can do about an unexpected database error, when the error
 * says: 26000 (a named prepared statement missing on its connection) is what
 * a transaction-mode pooler causes, handing a transaction a connection where
 * the statement was never prepared.
 */
export function operatorHint(error: unknown): string | undefined {
  if (sqlState(error) === '26000') {
    return 'a prepared statement was missing on its connection: behind a transaction-mode pooler older than PgBouncer 1.21, set DATABASE_PREPARED_STATEMENTS=unnamed';
  }
  return undefined;
}

/**
 * Maps what the database refuses on purpose, and a lost connection, to a
 * ServiceError; returns anything else unchanged (a bug or an outage, for the
 * caller to surface).
 */
export function fromDatabaseError(error: unknown): unknown {
  if (isConnectionLost(error)) {
    return new ServiceError('SERVICE_UNAVAILABLE', 'the database connection was lost; try again', { retryable: true });
  }
  switch (sqlState(error)) {
    case 'INVTR': // raised by the lifecycle trigger
      return new ServiceError('INVALID_TRANSITION', databaseMessage(error));
    case '23505':
      return new ServiceError('CONFLICT', 'that would duplicate an existing record');
    default:
      return error;
  }
}
