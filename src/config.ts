/**
 * The service's configuration, parsed once from the environment. Nothing else
 * reads process.env. A bad value stops start-up with a message naming it.
 */
import { z } from 'zod';

// An empty variable (FOO=) means "unset", as most deploy tools write it.
const optionalString = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());
const postgresUrl = z.preprocess(
  (v) => (v === '' ? undefined : v),
  z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
);

const environmentSchema = z.object({
  DATABASE_URL: postgresUrl,
  /** Where LISTEN connects; set it when DATABASE_URL goes through a transaction-mode pooler. */
  LISTEN_DATABASE_URL: postgresUrl,
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(20),
  /** Embedded PGlite's folder when DATABASE_URL is unset; `memory://` keeps nothing. */
  DATA_DIR: optionalString.default('.data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = {
  database:
    | { kind: 'postgres'; url: string; listenUrl: string; poolSize: number }
    | { kind: 'pglite'; dataDir: string };
  logLevel: z.infer<typeof environmentSchema>['LOG_LEVEL'];
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(environment: Record<string, string | undefined> = process.env): Config {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const env = parsed.data;
  return {
    database: env.DATABASE_URL
      ? {
          kind: 'postgres',
          url: env.DATABASE_URL,
          listenUrl: env.LISTEN_DATABASE_URL ?? env.DATABASE_URL,
          poolSize: env.DATABASE_POOL_SIZE,
        }
      : { kind: 'pglite', dataDir: env.DATA_DIR },
    logLevel: env.LOG_LEVEL,
  };
}
