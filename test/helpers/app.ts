/**
 * A real server on a free port, over a fresh test database, and a GraphQL
 * client that speaks plain HTTP to it, as any user's client would.
 */
import { Writable } from 'node:stream';
import { expect } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import type { QueryObserver } from '../../src/db/client.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { signToken, type TokenClaims } from '../../src/http/auth.js';
import { startService } from '../../bench/lib/service.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export const TEST_JWT_SECRET = 'test-secret-that-is-at-least-32-characters-long';

export type GraphQLResponse<T = Record<string, any>> = {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: Record<string, any> }[];
};

export type TestApp = {
  url: string;
  running: RunningApp;
  testDatabase: TestDatabase;
  /** Log lines the app wrote (JSON objects). */
  logs: Record<string, any>[];
  token(claims: TokenClaims, options?: { expiresIn?: string }): Promise<string>;
  graphql<T = Record<string, any>>(
    query: string,
    options?: { variables?: Record<string, unknown>; token?: string | null; headers?: Record<string, string> },
  ): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
};

export async function startTestApp(
  options: {
    onQuery?: QueryObserver;
    /** The pool's size (postgres): 1 puts every statement on one connection a test can reach. */
    poolSize?: number;
    env?: Record<string, string>;
    /** The embedded development mode (no DATABASE_URL, no JWT_SECRET: a generated secret, demo tokens); `token()` does not apply. */
    development?: boolean;
    /** Runs on the fresh migrated database before the service starts on it (a test's own migration, say). */
    prepare?: (testDatabase: TestDatabase) => Promise<void>;
  } = {},
): Promise<TestApp> {
  const testDatabase = await createTestDatabase({ onQuery: options.onQuery, poolSize: options.poolSize });
  await options.prepare?.(testDatabase);
  const { logger, logs } = captureLogs();
  const { app, running } = await startService(
    {
      // The database is handed over below; this only satisfies the auth rule for servers.
      ...(options.development ? { DATA_DIR: 'memory://' } : { DATABASE_URL: 'postgres://unused.invalid/unused', JWT_SECRET: TEST_JWT_SECRET }),
      // Tests submit far more than a person would; test/api/rate-limits.test.ts sets a budget.
      RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
      ...options.env,
    },
    { database: testDatabase.database, logger },
  );
  const secret = new TextEncoder().encode(TEST_JWT_SECRET);
  let closing: Promise<void> | undefined;

  return {
    url: running.url,
    running,
    testDatabase,
    logs,
    token: (claims, tokenOptions) => signToken(secret, claims, tokenOptions),
    async graphql(query, requestOptions = {}) {
      const response = await fetch(`${running.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...(requestOptions.token ? { authorization: `Bearer ${requestOptions.token}` } : {}),
          ...requestOptions.headers,
        },
        body: JSON.stringify({ query, variables: requestOptions.variables ?? {} }),
      });
      const body = (await response.json()) as Omit<GraphQLResponse, 'status' | 'headers'>;
      return { status: response.status, headers: response.headers, ...body } as GraphQLResponse<any>;
    },
    // Once, whatever happens: the database goes even if stopping fails.
    close() {
      closing ??= (async () => {
        try {
          await app.stop();
        } finally {
          await testDatabase.close();
        }
      })();
      return closing;
    },
  };
}

/** The one error of a response, failing the test clearly if there is not exactly one. */
/** The service's own logger (its serializers included), at info, writing each line parsed into `logs`. */
export function captureLogs(): { logger: Logger; logs: Record<string, any>[] } {
  const logs: Record<string, any>[] = [];
  const logger = createLogger(
    'info',
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
        done();
      },
    }),
  );
  return { logger, logs };
}

export function onlyError(response: GraphQLResponse) {
  if (response.errors?.length !== 1) {
    throw new Error(`expected exactly one error, got ${JSON.stringify(response.errors ?? response.data)}`);
  }
  return response.errors[0]!;
}

/** No stack trace, source path or SQL in anything a client receives. */
export function expectNothingInternal(response: GraphQLResponse) {
  const body = JSON.stringify({ data: response.data, errors: response.errors });
  expect(body).not.toMatch(/stack|node_modules|\.ts:\d+|\bat \w+ \(|relation "|request_stages/i);
}

/** The data of a response that must have succeeded. */
export function dataOf<T = Record<string, any>>(response: GraphQLResponse<T>): T {
  if (response.errors?.length || !response.data) {
    throw new Error(`expected success, got ${JSON.stringify(response.errors)}`);
  }
  return response.data;
}

export const STAGES = ['validation', 'retrieval', 'script_generation', 'video_generation', 'video_processing'] as const;
