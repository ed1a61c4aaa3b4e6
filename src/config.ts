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
  /** Embedded PGlite's folder when DATABASE_URL is unset; `memory://` keeps nothing. */
  DATA_DIR: optionalString.default('.data'),
  LOG_LEVEL: unsetWhenEmpty(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  PORT: unsetWhenEmpty(z.coerce.number().int().min(0).max(65_535).default(4000)),
  HOST: optionalString.default('0.0.0.0'),
  /** HS256 signing secret for bearer tokens. */
  JWT_SECRET: unsetWhenEmpty(z.string().min(32, 'must be at least 32 characters').optional()),
  /** Or verify RS256 tokens against this JWKS. */
  JWKS_URL: unsetWhenEmpty(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional()),
  JWT_ISSUER: optionalString,
  JWT_AUDIENCE: optionalString,
  /** Create the demo organization and users (and print their tokens); on by default when embedded. */
  DEMO_DATA: unsetWhenEmpty(z.enum(['true', 'false'], 'must be true or false').optional()),
  /** How often the hourly metrics rollup runs; 0 turns it off. */
  METRICS_ROLLUP_INTERVAL_SECONDS: unsetWhenEmpty(z.coerce.number().int().min(0).default(300)),
  /** Mutations a student or org admin may make a minute, shared by every process; 0 turns it off. */
  RATE_LIMIT_MUTATIONS_PER_MINUTE: unsetWhenEmpty(z.coerce.number().int().min(0).default(60)),
});

export type Config = {
  database:
    | { kind: 'postgres'; url: string; listenUrl: string; poolSize: number }
    | { kind: 'pglite'; dataDir: string };
  logLevel: z.infer<typeof environmentSchema>['LOG_LEVEL'];
  http: { port: number; host: string };
  auth: AuthConfig;
  demoData: boolean;
  metricsRollupIntervalMs: number;
  /** 0: no limit. */
  mutationsPerMinute: number;
};

export type AuthConfig = {
  /** `development`: embedded mode without a secret; one is generated and kept in the data folder. */
  verify: { kind: 'hs256'; secret: string } | { kind: 'jwks'; url: string } | { kind: 'development' };
  issuer?: string;
  audience?: string;
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
      }
    : { kind: 'pglite', dataDir: env.DATA_DIR };
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
  return {
    database: databaseConfig(env),
    logLevel: env.LOG_LEVEL,
    http: { port: env.PORT, host: env.HOST },
    auth: {
      verify: env.JWT_SECRET
        ? { kind: 'hs256', secret: env.JWT_SECRET }
        : env.JWKS_URL
          ? { kind: 'jwks', url: env.JWKS_URL }
          : { kind: 'development' },
      ...(env.JWT_ISSUER ? { issuer: env.JWT_ISSUER } : {}),
      ...(env.JWT_AUDIENCE ? { audience: env.JWT_AUDIENCE } : {}),
    },
    demoData: env.DEMO_DATA ? env.DEMO_DATA === 'true' : !env.DATABASE_URL,
    metricsRollupIntervalMs: env.METRICS_ROLLUP_INTERVAL_SECONDS * 1000,
    mutationsPerMinute: env.RATE_LIMIT_MUTATIONS_PER_MINUTE,
  };
}
