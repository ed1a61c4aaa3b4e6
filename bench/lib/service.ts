/**
 * The service started in this process, as `npm start` starts it (loadConfig,
 * createApp, start), on a loopback port of its own: the one start-up the
 * benchmarks and the tests' app share. Callers give the settings that differ
 * (the database, the pool, the token secret); these are the quiet ones every
 * such run wants.
 */
import { pino } from 'pino';
import { createApp, type App, type AppOptions, type RunningApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { signToken, type TokenClaims } from '../../src/http/auth.js';

/** The benchmarks' token secret (the service needs one with a server database). */
export const BENCH_JWT_SECRET = 'benchmark-secret-that-is-at-least-32-characters';

const LOCAL_SETTINGS: Record<string, string> = {
  PORT: '0',
  HOST: '127.0.0.1',
  DEMO_DATA: 'false',
  // No rollup timer: runs measure what they do, not a background job.
  METRICS_ROLLUP_INTERVAL_SECONDS: '0',
};

export type StartedService = { app: App; running: RunningApp; stop(): Promise<void> };

/** Starts the service with `settings` (environment variable names, as `npm start` reads them) over LOCAL_SETTINGS. */
export async function startService(settings: Record<string, string>, options: AppOptions = {}): Promise<StartedService> {
  const app = createApp(loadConfig({ ...LOCAL_SETTINGS, ...settings }), options);
  const running = await app.start();
  return { app, running, stop: () => app.stop() };
}

/**
 * The per-client caps, lifted for a benchmark: one admin opens thousands of
 * subscriptions, a few sockets carry hundreds each, and the write phase
 * submits far beyond a person's budget. The benchmark measures the service's
 * capacity, not its protection against a single client (test/live/limits and
 * test/api/rate-limits cover those).
 */
const UNCAPPED: Record<string, string> = {
  LIVE_MAX_SUBSCRIPTIONS_PER_USER: '1000000',
  LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET: '100000',
  LIVE_MAX_UNREAD_UPDATES: '100000',
  RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
};

/**
 * The periodic jobs, off: the loader writes months of finished history, which
 * retention would start deleting under the queries being timed, and the stall
 * check would mark the loaded stages. The phases that measure a job run it themselves.
 */
const NO_PERIODIC_JOBS: Record<string, string> = {
  RETENTION_DAYS: '0',
  STALL_CHECK_INTERVAL_SECONDS: '0',
  STAGE_ESTIMATES_REFRESH_SECONDS: '0',
};

/** A benchmark's service on the given database: uncapped, no periodic jobs, warnings and worse to stderr, the bench secret. */
export function startBenchService(databaseUrl: string, settings: Record<string, string> = {}): Promise<StartedService> {
  return startService(
    { DATABASE_URL: databaseUrl, JWT_SECRET: BENCH_JWT_SECRET, LOG_LEVEL: 'warn', ...UNCAPPED, ...NO_PERIODIC_JOBS, ...settings },
    { logger: pino({ level: 'warn' }, pino.destination(2)) },
  );
}

/** A token the benchmark's service accepts. */
export const benchToken = (claims: TokenClaims, options?: { expiresIn?: string }) =>
  signToken(new TextEncoder().encode(BENCH_JWT_SECRET), claims, options);
