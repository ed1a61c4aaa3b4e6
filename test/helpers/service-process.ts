/**
 * The service as a separate process, as `npm start` runs it (without npm in
 * between, so signals reach the service itself), with a clean environment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_JWT_SECRET } from './app.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const START_TIMEOUT_MS = 60_000;

const SERVICE_SETTINGS = [
  'DATABASE_URL',
  'LISTEN_DATABASE_URL',
  'DATABASE_POOL_SIZE',
  'DATA_DIR',
  'LOG_LEVEL',
  'PORT',
  'HOST',
  'METRICS_PORT',
  'CORS_ORIGINS',
  'JWT_SECRET',
  'JWKS_URL',
  'JWT_ISSUER',
  'JWT_AUDIENCE',
  'TOKEN_MAX_LIFETIME_SECONDS',
  'TOKEN_CLOCK_SKEW_SECONDS',
  'DEMO_DATA',
  'METRICS_ROLLUP_INTERVAL_SECONDS',
  'STALL_FACTOR',
  'STALL_CHECK_INTERVAL_SECONDS',
  'RETENTION_DAYS',
  'RETENTION_BATCH_SIZE',
  'RETENTION_INTERVAL_SECONDS',
  'SHUTDOWN_GRACE_SECONDS',
  'HTTP_MAX_BODY_BYTES',
  'HTTP_KEEPALIVE_SECONDS',
  'WS_MAX_PAYLOAD_BYTES',
  'WS_KEEPALIVE_SECONDS',
  'LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET',
  'LIVE_MAX_SUBSCRIPTIONS_PER_USER',
  'LIVE_MAX_UNREAD_UPDATES',
  'RATE_LIMIT_MUTATIONS_PER_MINUTE',
];

/** The environment of a shell with none of the service's settings in it, plus `extra`. */
export function serviceEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of SERVICE_SETTINGS) delete env[name];
  return { ...env, ...extra };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export type ServiceProcess = {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  hasExited(): boolean;
  /** Everything it printed, for a failure message. */
  describe(): string;
  /** Resolves with stdout's match once it appears; fails with everything printed so far. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
};

export function spawnService(env: Record<string, string>, name = 'service'): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: serviceEnvironment(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  let exitedWith: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve((exitedWith = { code, signal }))));
  const describe = () => `${name}\n--- stdout\n${out}\n--- stderr\n${err}`;
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    hasExited: () => exitedWith !== undefined,
    describe,
    async waitForOutput(pattern, timeoutMs = START_TIMEOUT_MS) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = out.match(pattern);
        if (match) return match;
        if (exitedWith || Date.now() > deadline) {
          const why = exitedWith ? `the service exited (${JSON.stringify(exitedWith)})` : `timed out after ${timeoutMs} ms`;
          throw new Error(`${why} waiting for ${pattern}\n${describe()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}

export type Replica = ServiceProcess & { name: string; url: string };

/**
 * One of several service processes on a shared server database, as replicas
 * run: a free loopback port, the test secret, no demo data, warnings only;
 * `settings` adds or overrides. Not yet ready: waitUntilReady(replica, replica.url).
 */
export async function spawnReplica(databaseUrl: string, name: string, settings: Record<string, string> = {}): Promise<Replica> {
  const port = await freePort();
  const service = spawnService(
    { DATABASE_URL: databaseUrl, JWT_SECRET: TEST_JWT_SECRET, DEMO_DATA: 'false', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...settings },
    name,
  );
  return Object.assign(service, { name, url: `http://127.0.0.1:${port}` });
}

/** Kills (SIGKILL) every process still running and waits for each to exit. */
export async function killAll(services: readonly (ServiceProcess | undefined)[]): Promise<void> {
  for (const service of services) {
    if (service && !service.hasExited()) {
      service.child.kill('SIGKILL');
      await service.exited;
    }
  }
}

/** Waits for the exit, failing if it takes longer than `ms`. */
export async function exitWithin(service: ServiceProcess, ms: number): Promise<Exit & { elapsedMs: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms: ${service.describe()}`)), ms);
  });
  try {
    return { ...(await Promise.race([service.exited, timeout])), elapsedMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `${url}/ready` answers 200 (migrated, listening, database reachable); fails with what it printed if it exits first or takes too long. */
export async function waitUntilReady(service: ServiceProcess, url: string, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (service.hasExited()) throw new Error(`exited while starting: ${service.describe()}`);
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms: ${service.describe()}`);
    if (await fetch(`${url}/ready`).then((response) => response.status === 200, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A GraphQL operation over HTTP that must succeed: its data (any error fails with the errors). */
export async function graphqlAt(url: string, token: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, any>; errors?: unknown[] };
  if (body.errors) throw new Error(`${url}: GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data!;
}
