/**
 * The service's configuration, parsed once from the environment. Nothing else
 * reads process.env. A bad value stops start-up with a message naming it.
 */
import { z } from 'zod';

// An empty variable (FOO=) means "unset", as most deploy tools write it.
const unsetWhenEmpty = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema);
const optionalString = unsetWhenEmpty(z.string().optional());
const postgresUrl = unsetWhenEmpty(
  z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
);

const environmentSchema = z.object({
  DATABASE_URL: postgresUrl,
  /** Where LISTEN connects; set it when DATABASE_URL goes through a transaction-mode pooler. */
  LISTEN_DATABASE_URL: postgresUrl,
  DATABASE_POOL_SIZE: unsetWhenEmpty(z.coerce.number().int().min(1).max(500).default(20)),
  /** named: hot statements prepared once per connection; unnamed: behind a transaction-mode pooler (pgbouncer before 1.21). */
  DATABASE_PREPARED_STATEMENTS: unsetWhenEmpty(z.enum(['named', 'unnamed']).default('named')),
  /** Embedded PGlite's folder when DATABASE_URL is unset; `memory://` keeps nothing. */
  DATA_DIR: optionalString.default('.data'),
  LOG_LEVEL: unsetWhenEmpty(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  PORT: unsetWhenEmpty(z.coerce.number().int().min(0).max(65_535).default(4000)),
  /** Unset: 127.0.0.1 when embedded (development tokens are served there), 0.0.0.0 with DATABASE_URL. */
  HOST: optionalString,
  /** Origins (comma-separated) a browser may call the API from; empty: none (no CORS headers). */
  CORS_ORIGINS: optionalString,
  /** The largest request body read; a larger one is refused with 413 before it is read. */
  HTTP_MAX_BODY_BYTES: unsetWhenEmpty(z.coerce.number().int().min(1_024).max(100 * 1024 * 1024).default(1024 * 1024)),
  /** Connections open at once (HTTP, SSE, WebSocket); one more is answered 503 and closed. */
  HTTP_MAX_CONNECTIONS: unsetWhenEmpty(z.coerce.number().int().min(1).max(1_000_000).default(10_000)),
  /** How long an idle keep-alive connection is kept: longer than the idle timeout of whatever is in front (a load balancer's is often 60 s). */
  HTTP_KEEPALIVE_SECONDS: unsetWhenEmpty(z.coerce.number().int().min(1).max(3_600).default(65)),
  /** Serve /metrics on this port only (not on PORT); unset: on PORT. */
  METRICS_PORT: unsetWhenEmpty(z.coerce.number().int().min(0).max(65_535).optional()),
  /** HS256 signing secret for bearer tokens. */
  JWT_SECRET: unsetWhenEmpty(z.string().min(32, 'must be at least 32 characters').optional()),
  /** Or verify RS256 tokens against this JWKS. */
  JWKS_URL: unsetWhenEmpty(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  JWT_ISSUER: optionalString,
  /** The longest a token may live (exp − iat, and age since iat); the default lets the 30-day development tokens through. */
  TOKEN_MAX_LIFETIME_SECONDS: unsetWhenEmpty(z.coerce.number().int().min(60).default(31 * 86_400)),
  /** How far the issuer's clock may be off from ours, for exp, iat and nbf. */
  TOKEN_CLOCK_SKEW_SECONDS: unsetWhenEmpty(z.coerce.number().int().min(0).max(600).default(60)),
  JWT_AUDIENCE: optionalString,
  /** Create the demo organization and users (and print their tokens); on by default when embedded. */
  DEMO_DATA: unsetWhenEmpty(z.enum(['true', 'false'], 'must be true or false').optional()),
  /** Run the demo pipeline inside the service (needs the demo users and a way to sign a worker token); off by default. */
  DEMO_PIPELINE: unsetWhenEmpty(z.enum(['true', 'false'], 'must be true or false').default('false')),
  /** How often the hourly metrics rollup runs; 0 turns it off. */
  METRICS_ROLLUP_INTERVAL_SECONDS: unsetWhenEmpty(z.coerce.number().int().min(0).default(300)),
  /** A stage running longer than its expected duration times this is stalled. */
  STALL_FACTOR: unsetWhenEmpty(z.coerce.number().positive().max(1_000).default(2)),
  /** How often running stages are checked for stalls; 0 turns the check off. */
  STALL_CHECK_INTERVAL_SECONDS: unsetWhenEmpty(
    z.coerce.number().min(0).max(86_400).refine((v) => v === 0 || v >= 0.1, 'must be 0 (off) or at least 0.1').default(30),
  ),
  /** How often the per-stage duration estimates behind the ETA are recomputed; 0 turns it off. */
  STAGE_ESTIMATES_REFRESH_SECONDS: unsetWhenEmpty(z.coerce.number().int().min(0).default(300)),
  /** How far back the estimates look: stages completed in the last this many days. */
  STAGE_ESTIMATES_WINDOW_DAYS: unsetWhenEmpty(z.coerce.number().int().min(1).max(365).default(7)),
  /** Finished requests untouched this many days are removed with their stages and events; 0 keeps everything. */
  RETENTION_DAYS: unsetWhenEmpty(z.coerce.number().int().min(0).max(36_500).default(30)),
  /** Requests removed per retention transaction: each batch's locks last one short transaction. */
  RETENTION_BATCH_SIZE: unsetWhenEmpty(z.coerce.number().int().min(1).max(10_000).default(500)),
  /** How often the retention job runs (when RETENTION_DAYS is not 0). */
  RETENTION_INTERVAL_SECONDS: unsetWhenEmpty(z.coerce.number().int().min(1).default(3_600)),
  /** /metrics' requests-by-status gauge is read from the database at most this often (one group-by over an index). */
  METRICS_GAUGE_MAX_AGE_SECONDS: unsetWhenEmpty(z.coerce.number().int().min(1).max(3_600).default(15)),
  /** On SIGTERM, how long open connections get to finish before they are cut. */
  SHUTDOWN_GRACE_SECONDS: unsetWhenEmpty(z.coerce.number().min(0).max(3_600).default(10)),
  /** The largest WebSocket frame read; a larger one closes the socket with 1009. */
  WS_MAX_PAYLOAD_BYTES: unsetWhenEmpty(z.coerce.number().int().min(1_024).max(100 * 1024 * 1024).default(1024 * 1024)),
  /** How often a WebSocket is pinged; one that does not answer within as long again is dropped. */
  WS_KEEPALIVE_SECONDS: unsetWhenEmpty(z.coerce.number().min(0.1).max(3_600).default(12)),
  LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET: unsetWhenEmpty(z.coerce.number().int().min(1).default(100)),
  LIVE_MAX_SUBSCRIPTIONS_PER_USER: unsetWhenEmpty(z.coerce.number().int().min(1).default(200)),
  /** A live client this many updates behind is cut off (it resumes from its cursor). */
  LIVE_MAX_UNREAD_UPDATES: unsetWhenEmpty(z.coerce.number().int().min(1).max(100_000).default(1_000)),
  /** Mutations a student or org admin may make a minute, shared by every process; 0 turns it off. */
  RATE_LIMIT_MUTATIONS_PER_MINUTE: unsetWhenEmpty(z.coerce.number().int().min(0).default(60)),
});

export type Config = {
  database:
    | { kind: 'postgres'; url: string; listenUrl: string; poolSize: number; preparedStatements: 'named' | 'unnamed' }
    | { kind: 'pglite'; dataDir: string };
  logLevel: z.infer<typeof environmentSchema>['LOG_LEVEL'];
  http: { port: number; host: string; corsOrigins: string[]; maxBodyBytes: number; maxConnections: number; keepAliveMs: number };
  /** A listener of its own for /metrics; unset: /metrics on the main port. */
  metricsPort?: number;
  auth: AuthConfig;
  demoData: boolean;
  demoPipeline: boolean;
  metricsRollupIntervalMs: number;
  /** Stalled stages: the factor on the expected duration, and how often to check (0: never). */
  stalls: { factor: number; checkIntervalMs: number };
  /** The ETA's estimates job (services/eta.ts); refreshIntervalMs 0: off. */
  stageEstimates: StageEstimatesConfig;
  retention: RetentionConfig;
  metricsGaugeMaxAgeMs: number;
  shutdownGraceMs: number;
  websocket: { maxPayloadBytes: number; keepAliveMs: number };
  live: { maxSubscriptionsPerSocket: number; maxSubscriptionsPerUser: number; maxUnreadUpdates: number };
  /** 0: no limit. */
  mutationsPerMinute: number;
};

export type StageEstimatesConfig = { refreshIntervalMs: number; windowDays: number };
/** days 0: nothing is ever removed (the job does not run). */
export type RetentionConfig = { days: number; batchSize: number; intervalMs: number };

export type AuthConfig = {
  /** `development`: embedded mode without a secret; one is generated and kept in the data folder. */
  verify: { kind: 'hs256'; secret: string } | { kind: 'jwks'; url: string } | { kind: 'development' };
  issuer?: string;
  audience?: string;
  maxLifetimeSeconds: number;
  clockSkewSeconds: number;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function parseEnvironment(environment: Record<string, string | undefined>) {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}

type Environment = ReturnType<typeof parseEnvironment>;

function databaseConfig(env: Environment): Config['database'] {
  return env.DATABASE_URL
    ? {
        kind: 'postgres',
        url: env.DATABASE_URL,
        listenUrl: env.LISTEN_DATABASE_URL ?? env.DATABASE_URL,
        poolSize: env.DATABASE_POOL_SIZE,
        preparedStatements: env.DATABASE_PREPARED_STATEMENTS,
      }
    : { kind: 'pglite', dataDir: env.DATA_DIR };
}

function retentionConfig(env: Environment): RetentionConfig {
  return { days: env.RETENTION_DAYS, batchSize: env.RETENTION_BATCH_SIZE, intervalMs: env.RETENTION_INTERVAL_SECONDS * 1000 };
}

/** What `npm run retention` needs: the database and the retention settings, no auth. */
export function loadRetentionConfig(
  environment: Record<string, string | undefined> = process.env,
): { database: Config['database']; retention: RetentionConfig } {
  const env = parseEnvironment(environment);
  return { database: databaseConfig(env), retention: retentionConfig(env) };
}

/** Only what the database tools (migrate, rollback) need. */
export function loadDatabaseConfig(
  environment: Record<string, string | undefined> = process.env,
): Config['database'] {
  return databaseConfig(parseEnvironment(environment));
}

export function loadConfig(environment: Record<string, string | undefined> = process.env): Config {
  const env = parseEnvironment(environment);
  if (env.JWT_SECRET && env.JWKS_URL) {
    throw new ConfigError('invalid configuration:\n  set JWT_SECRET or JWKS_URL, not both');
  }
  if (env.DATABASE_URL && !env.JWT_SECRET && !env.JWKS_URL) {
    throw new ConfigError(
      'invalid configuration:\n  JWT_SECRET or JWKS_URL is required with DATABASE_URL (development tokens are for the embedded database only)',
    );
  }
  const demoData = env.DEMO_DATA ? env.DEMO_DATA === 'true' : !env.DATABASE_URL;
  const demoPipeline = env.DEMO_PIPELINE === 'true';
  // The pipeline submits for the demo students as the demo worker, with a token the service signs itself.
  if (demoPipeline && (!demoData || env.JWKS_URL)) {
    throw new ConfigError(
      'invalid configuration:\n  DEMO_PIPELINE=true needs the demo users (DEMO_DATA=true with DATABASE_URL) and a secret to sign its worker token (JWT_SECRET, or the embedded development secret); with JWKS_URL run `npm run demo` with TOKEN instead',
    );
  }
  return {
    database: databaseConfig(env),
    logLevel: env.LOG_LEVEL,
    http: {
      port: env.PORT,
      host: env.HOST ?? (env.DATABASE_URL ? '0.0.0.0' : '127.0.0.1'),
      corsOrigins: (env.CORS_ORIGINS ?? '').split(',').map((origin) => origin.trim()).filter(Boolean),
      maxBodyBytes: env.HTTP_MAX_BODY_BYTES,
      maxConnections: env.HTTP_MAX_CONNECTIONS,
      keepAliveMs: env.HTTP_KEEPALIVE_SECONDS * 1000,
    },
    ...(env.METRICS_PORT !== undefined ? { metricsPort: env.METRICS_PORT } : {}),
    auth: {
      verify: env.JWT_SECRET
        ? { kind: 'hs256', secret: env.JWT_SECRET }
        : env.JWKS_URL
          ? { kind: 'jwks', url: env.JWKS_URL }
          : { kind: 'development' },
      ...(env.JWT_ISSUER ? { issuer: env.JWT_ISSUER } : {}),
      ...(env.JWT_AUDIENCE ? { audience: env.JWT_AUDIENCE } : {}),
      maxLifetimeSeconds: env.TOKEN_MAX_LIFETIME_SECONDS,
      clockSkewSeconds: env.TOKEN_CLOCK_SKEW_SECONDS,
    },
    demoData,
    demoPipeline,
    metricsRollupIntervalMs: env.METRICS_ROLLUP_INTERVAL_SECONDS * 1000,
    stalls: { factor: env.STALL_FACTOR, checkIntervalMs: Math.round(env.STALL_CHECK_INTERVAL_SECONDS * 1000) },
    stageEstimates: {
      refreshIntervalMs: env.STAGE_ESTIMATES_REFRESH_SECONDS * 1000,
      windowDays: env.STAGE_ESTIMATES_WINDOW_DAYS,
    },
    retention: retentionConfig(env),
    metricsGaugeMaxAgeMs: env.METRICS_GAUGE_MAX_AGE_SECONDS * 1000,
    shutdownGraceMs: env.SHUTDOWN_GRACE_SECONDS * 1000,
    websocket: { maxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES, keepAliveMs: env.WS_KEEPALIVE_SECONDS * 1000 },
    live: {
      maxSubscriptionsPerSocket: env.LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET,
      maxSubscriptionsPerUser: env.LIVE_MAX_SUBSCRIPTIONS_PER_USER,
      maxUnreadUpdates: env.LIVE_MAX_UNREAD_UPDATES,
    },
    mutationsPerMinute: env.RATE_LIMIT_MUTATIONS_PER_MINUTE,
  };
}
