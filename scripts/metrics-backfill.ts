/**
 * npm run metrics:backfill -- --from 2026-11-01T00:00:00Z --to 2026-11-02T00:00:00Z
 *
 * Recomputes the hourly request_metrics buckets of every creation hour in
 * [from, to) (whole hours: from rounded down, to rounded up), at most
 * RECOMPUTE_MAX_DAYS at a time, one day per statement. Idempotent: run it as
 * often as you like. On DATABASE_URL when set, else on the PGlite folder
 * DATA_DIR (stop the service first: only one process may open it).
 */
import { parseArgs } from 'node:util';
import { loadDatabaseConfig } from '../src/config.js';
import { openDatabase } from '../src/db/client.js';
import { RECOMPUTE_MAX_DAYS, recomputeRequestMetrics } from '../src/services/monitoring.js';

const USAGE = 'usage: npm run metrics:backfill -- --from <ISO 8601 time> --to <ISO 8601 time>';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
// A date and time with an explicit zone, e.g. 2026-11-01T09:00:00Z or 2026-11-01T10:00+01:00.
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function instant(name: string, value: string | undefined): Date {
  if (!value) fail(`--${name} is required`);
  const date = new Date(value);
  // The value is not echoed: it is whatever was typed.
  if (!ISO_INSTANT.test(value) || Number.isNaN(date.getTime())) fail(`--${name} must be an ISO 8601 time with a zone, e.g. 2026-11-01T00:00:00Z`);
  return date;
}

let values;
try {
  ({ values } = parseArgs({ options: { from: { type: 'string' }, to: { type: 'string' } } }));
} catch {
  fail('unknown or incomplete option');
}
const from = instant('from', values.from);
const to = instant('to', values.to);
if (from >= to) fail('--from must be before --to');
if (to.getTime() - from.getTime() > RECOMPUTE_MAX_DAYS * DAY_MS) fail(`the range may span at most ${RECOMPUTE_MAX_DAYS} days`);

const database = await openDatabase(loadDatabaseConfig());
try {
  let hours = 0;
  // A day per statement, on whole hours so that days do not overlap: each statement short.
  const first = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS;
  const last = Math.ceil(to.getTime() / HOUR_MS) * HOUR_MS;
  for (let start = first; start < last; start += DAY_MS) {
    const end = Math.min(start + DAY_MS, last);
    hours += await recomputeRequestMetrics(database.db, { from: new Date(start), to: new Date(end) });
  }
  console.log(`recomputed ${hours} hour(s) with requests between ${from.toISOString()} and ${to.toISOString()}`);
} finally {
  await database.close();
}
