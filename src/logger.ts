/** The one structured logger (pino). Modules take a child with their own `component`. */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = 'info', destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'content-request-tracker' }, serializers: { err: serializeError } };
  return destination ? pino(options, destination) : pino(options);
}

/** For tests and tools that want no output. */
export const silentLogger: Logger = pino({ level: 'silent' });

// What a database error may tell the log: where and why, never the row's values.
const DATABASE_FIELDS = ['code', 'severity', 'constraint', 'table', 'schema', 'column', 'dataType', 'routine'] as const;
// Properties that carry bound values or whole rows: Drizzle's `params`, the
// server's DETAIL ("Failing row contains (…)", "Key (…)=(…)"), WHERE and hint.
const NEVER_LOGGED = new Set(['params', 'detail', 'where', 'hint', 'internalQuery', 'cause', 'stack', 'message']);
const MAX_MESSAGE = 500;

const isSqlState = (code: unknown): code is string => typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);

/**
 * pino's `err` serializer. Students' text reaches the database as bound
 * values, and a failed statement's error repeats them: Drizzle's message ends
 * in "params: …" (every value, 30 KB with a long query), the server's detail
 * holds the failing row, some messages quote the value they refused. So a
 * query error keeps its SQL (ours, with placeholders) and the number of
 * values; a database error its SQLSTATE, constraint, table and column; any
 * message has the bound values cut out and is capped. The cause chain is
 * serialized the same way.
 */
export function serializeError(error: unknown): unknown {
  return error instanceof Error ? serialize(error, [], 0) : error;
}

function serialize(error: Error, bound: readonly unknown[], depth: number): Record<string, unknown> {
  const record = error as unknown as Record<string, unknown>;
  const params = Array.isArray(record.params) ? (record.params as unknown[]) : undefined;
  const values = params ?? bound;
  const query = typeof record.query === 'string' ? record.query : undefined;
  // Drizzle's wrapper: its message is the SQL (ours, placeholders only; kept
  // once, as `query`) and every value. A driver's own error keeps its message.
  const wrapper = params !== undefined && query !== undefined && !isSqlState(record.code);
  const message = wrapper ? 'Failed query' : redact(error.message, values);
  const type = error.constructor?.name ?? error.name;
  const out: Record<string, unknown> = { type, message };
  if (params) out.paramCount = params.length;
  if (isSqlState(record.code)) {
    for (const field of DATABASE_FIELDS) if (record[field] !== undefined) out[field] = record[field];
  } else {
    for (const key of Object.keys(record)) {
      if (!NEVER_LOGGED.has(key) && !(record[key] instanceof Error)) out[key] = record[key];
    }
  }
  // The stack's first line repeats the message: keep only the frames.
  const frames = error.stack?.split('\n').filter((line) => /^\s+at /.test(line)) ?? [];
  out.stack = [`${type}: ${message}`, ...frames].join('\n');
  if (error.cause instanceof Error && depth < 5) out.cause = serialize(error.cause, values, depth + 1);
  return out;
}

function redact(message: string, values: readonly unknown[]): string {
  let text = message;
  for (const value of values) {
    const shown = typeof value === 'string' ? value : value && typeof value === 'object' ? JSON.stringify(value) : undefined;
    if (shown && shown.length >= 3) text = text.split(shown).join('[bound value]');
  }
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}… (${text.length} characters)` : text;
}
