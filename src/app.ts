/**
 * The app factory: everything the service is, with no side effect until
 * start(). main.ts is the only file that reads the environment and listens
 * for signals; tests build apps here with their own database.
 */
import { setMaxListeners } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuthConfig, Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { migrateUp } from './db/migrate.js';
import { runDemoPipeline } from './demo/pipeline.js';
import { createTokenVerifier, developmentSecret, signToken } from './http/auth.js';
import { EXAMPLE_OPERATION_NAMES } from './http/graphiql.js';
import { createAuthenticator, createGraphQLServer, type GraphQLServer } from './http/graphql-server.js';
import { countRetentionPurges, createMetrics, createMetricsServer, type ProcessFaults } from './http/metrics.js';
import { registerJobMetrics } from './http/job-metrics.js';
import { limitConnections } from './http/connection-limit.js';
import { guardRequests } from './http/request-guards.js';
import { RequestsInFlight } from './http/requests-in-flight.js';
import { serveDashboard } from './http/dashboard.js';
import { servePlainPosts } from './http/plain-posts.js';
import { attachWebSocketTransport } from './http/websocket.js';
import { EventHub } from './live/hub.js';
import { StreamQuota } from './live/subscriptions.js';
import { eventsAfterPosition, latestPosition } from './services/live-reads.js';
import { createLogger, type Logger } from './logger.js';
import { DEMO_USERS, seedDemoData, type DemoUser } from './services/demo.js';
import { createMutationLimiter } from './services/limits.js';
import { startJobs, type PeriodicJob } from './services/jobs.js';
import { metricsRollupJob } from './services/monitoring.js';
import { countStalledRequests, stallCheckJob } from './services/stalls.js';
import { stageEstimatesJob } from './services/eta.js';
import { retentionJob } from './services/retention.js';
import { listPipelineStages, requestStatuses } from './services/pipeline.js';
import type { Role } from './services/access.js';

export type DevelopmentToken = DemoUser & { token: string };

export type RunningApp = {
  /** Where the service listens, e.g. http://127.0.0.1:4000 */
  url: string;
  /** Where /metrics is served: `${url}/metrics`, or on METRICS_PORT. */
  metricsUrl: string;
  database: Database;
  graphql: GraphQLServer;
  hub: EventHub;
  /** Signed tokens for the demo users (embedded development mode only). */
  developmentTokens: DevelopmentToken[];
};

export type App = {
  start(): Promise<RunningApp>;
  /** Stops taking requests, lets in-flight ones finish (their clients there or not), then closes the database. */
  stop(): Promise<void>;
};

export type AppOptions = {
  /** An already-open database (tests); the app then leaves closing it to the caller. */
  database?: Database;
  logger?: Logger;
  faults?: ProcessFaults;
};

export function createApp(config: Config, options: AppOptions = {}): App {
  const logger = options.logger ?? createLogger(config.logLevel);
  let running: { app: RunningApp; shutdown: () => Promise<void>; cutConnections: () => void } | undefined;

  async function start(): Promise<RunningApp> {
    if (running) return running.app;
    // What start() has opened, closed in reverse order by stop() (or by a failed start).
    const closers: (() => Promise<void>)[] = [];
    const shutdown = async () => {
      for (const close of closers.splice(0).reverse()) {
        await close().catch((error: unknown) => logger.error({ err: error }, 'error while stopping'));
      }
    };
    try {
      const database = options.database ?? (await openDatabase(config.database));
      if (!options.database) closers.push(() => database.close());
      const applied = await migrateUp(database);
      if (applied.length) logger.info({ applied }, 'migrations applied');
      // The GraphQL enum holds the statuses the migrations defined (a stage is data).
      const statuses = await requestStatuses(database.db);

      const secret =
        config.auth.verify.kind === 'development'
          ? await developmentSecret(config.database.kind === 'pglite' ? config.database.dataDir : undefined)
          : undefined;
      const developmentTokens = config.demoData ? await seedDemoUsers(config, database, secret) : [];
      const graphiqlTokens: Partial<Record<Role, string>> = {};
      for (const { role, token } of developmentTokens) graphiqlTokens[role] ??= token;

      // Live updates: one listener for the process, one hub for every subscription.
      const listener = await database.createNotificationListener(logger);
      closers.push(() => listener.close());
      const hub = await EventHub.start(
        {
          listener,
          eventsAfter: (position, limit) => eventsAfterPosition(database.db, position, limit),
          latestPosition: () => latestPosition(database.db),
        },
        logger,
      );
      closers.push(() => hub.close());
      const closing = new AbortController();
      // Every open stream listens for it: no "possible EventTarget memory leak" warning past 10.
      setMaxListeners(0, closing.signal);

      const metrics = createMetrics(hub, {
        knownOperations: EXAMPLE_OPERATION_NAMES,
        endpoint: config.metricsPort === undefined,
        faults: options.faults ?? { unhandledRejections: 0 },
        pipeline: {
          db: database.db,
          logger,
          statuses,
          stages: (await listPipelineStages(database.db)).map((stage) => stage.stageName),
          gaugeMaxAgeMs: config.metricsGaugeMaxAgeMs,
        },
      });
      closers.push(() => metrics.close());
      const authenticate = createAuthenticator(database.db, createTokenVerifier(config.auth, secret));
      const graphql = createGraphQLServer({
        db: database.db,
        requestStatuses: statuses,
        authenticate,
        live: {
          db: database.db,
          hub,
          closing: closing.signal,
          streamsPerUser: new StreamQuota(config.live.maxSubscriptionsPerUser),
          maxUnreadUpdates: config.live.maxUnreadUpdates,
        },
        logger,
        metrics,
        graphiqlTokens,
        corsOrigins: config.http.corsOrigins,
        mutationLimiter: createMutationLimiter(database.db, config.mutationsPerMinute),
      });
      closers.push(async () => {
        await graphql.dispose();
      });

      // The dashboard's one-click sign-ins: the same development tokens GraphiQL gets, in the same mode only.
      const dashboard = serveDashboard(graphql, {
        signIns: developmentTokens.map(({ name, role, token }) => ({ name, role, token })),
      });
      const requestsInFlight = new RequestsInFlight();
      const server = createServer(
        requestsInFlight.track(guardRequests(servePlainPosts(graphql, { logger, metrics }, dashboard), { maxBodyBytes: config.http.maxBodyBytes })),
      );
      limitConnections(server, config.http.maxConnections, metrics.registry);
      // Node's 5 s default is shorter than most load balancers' and client pools' idle timeouts: a
      // client reusing a connection the server is just closing gets a reset instead of an answer.
      server.keepAliveTimeout = config.http.keepAliveMs;
      const drain = closeConnectionsWhenDone(server);
      const websockets = attachWebSocketTransport({
        server,
        graphql,
        authenticate,
        logger,
        limits: { ...config.websocket, maxSubscriptionsPerSocket: config.live.maxSubscriptionsPerSocket },
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.http.port, config.http.host, () => resolve());
      });
      closers.push(async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          drain();
        });
        // A client may have hung up on an operation still running: it finishes on an open database.
        await requestsInFlight.settled();
      });
      // Runs first on stop: streams complete (SSE responses end, WebSockets close) before the server waits for them.
      closers.push(async () => {
        closing.abort();
        await websockets.close();
      });
      const url = urlOf(server);
      let metricsUrl = `${url}/metrics`;
      if (config.metricsPort !== undefined) {
        const metricsServer = createMetricsServer(metrics.registry);
        await new Promise<void>((resolve, reject) => {
          metricsServer.once('error', reject);
          metricsServer.listen(config.metricsPort, config.http.host, () => resolve());
        });
        closers.push(() => new Promise<void>((resolve) => metricsServer.close(() => resolve())));
        metricsUrl = `${urlOf(metricsServer)}/metrics`;
      }

      // Periodic jobs: each runs in one replica at a time (services/jobs.ts).
      const jobMetrics = registerJobMetrics(metrics.registry, { stalledRequests: () => countStalledRequests(database.db) });
      const jobs: PeriodicJob[] = [];
      if (config.metricsRollupIntervalMs > 0) jobs.push(metricsRollupJob(config.metricsRollupIntervalMs));
      if (config.stalls.checkIntervalMs > 0) {
        jobs.push(stallCheckJob({ stallFactor: config.stalls.factor, intervalMs: config.stalls.checkIntervalMs }));
      }
      if (config.stageEstimates.refreshIntervalMs > 0) jobs.push(stageEstimatesJob(config.stageEstimates));
      if (config.retention.days > 0) {
        const countPurged = countRetentionPurges(metrics.registry);
        jobs.push(
          retentionJob(config.retention, (batch) => {
            countPurged(batch);
            logger.info({ removed: batch }, 'retention removed finished requests');
          }),
        );
      }
      const scheduler = startJobs(database.db, jobs, { logger, onRun: jobMetrics.jobRun });
      closers.push(() => scheduler.stop());

      // Pushed last, so it stops first: no report is cut off by the server closing.
      if (config.demoPipeline) closers.push(await startDemoPipeline(config, url, developmentTokens, logger));

      const app = { url, metricsUrl, database, graphql, hub, developmentTokens };
      // A client that stopped reading would keep its connection (and stop()) open forever.
      const cutConnections = () => {
        websockets.terminate();
        server.closeAllConnections();
        const abandoned = requestsInFlight.abandon();
        if (abandoned) logger.warn({ requests: abandoned }, 'grace period over: not waiting for requests still running');
      };
      running = { app, shutdown, cutConnections };
      logger.info({ url: `${url}/graphql`, database: database.kind }, 'content request tracker ready');
      return app;
    } catch (error) {
      await shutdown();
      throw error;
    }
  }

  /** Lets open connections and running requests finish for SHUTDOWN_GRACE_SECONDS, then cuts the rest. */
  async function stop(): Promise<void> {
    if (!running) return;
    const { shutdown, cutConnections } = running;
    running = undefined;
    const grace = setTimeout(() => {
      logger.warn({ graceMs: config.shutdownGraceMs }, 'grace period over: cutting the connections still open');
      cutConnections();
    }, config.shutdownGraceMs);
    try {
      await shutdown();
    } finally {
      clearTimeout(grace);
    }
    logger.info('stopped');
  }

  return { start, stop };
}

/**
 * The demo organization and users, and a token for each in the embedded
 * development mode only: never signed with a configured secret, where a
 * token would be a real one handed to whoever opens GraphiQL.
 */
async function seedDemoUsers(config: Config, database: Database, developmentSecret: Uint8Array | undefined) {
  const demoUsers = await seedDemoData(database.db);
  if (!developmentSecret) return [];
  const tokens: DevelopmentToken[] = [];
  for (const user of demoUsers) tokens.push({ ...user, token: await signDemoUserToken(developmentSecret, user, config.auth) });
  return tokens;
}

/** The demo pipeline against this instance's own URL, as the demo worker; returns what stops it. */
async function startDemoPipeline(config: Config, url: string, developmentTokens: DevelopmentToken[], logger: Logger) {
  const token = developmentTokens.find((user) => user.role === 'worker')?.token ?? (await signDemoWorkerToken(config));
  // The demo users are seeded (loadConfig lets the pipeline run only with them).
  const studentIds = DEMO_USERS.filter((user) => user.role === 'student').map((user) => user.userId);
  const stopPipeline = new AbortController();
  const pipeline = runDemoPipeline({
    url,
    token,
    studentIds,
    signal: stopPipeline.signal,
    // Its steps are a demo's noise (LOG_LEVEL=debug shows them); a request that broke off is worth a warning.
    log: (level, message, fields) => (level === 'warn' ? logger.warn(fields, message) : logger.debug(fields, message)),
  }).catch((error: unknown) => logger.error({ err: error }, 'the demo pipeline stopped'));
  logger.info({ students: studentIds }, 'demo pipeline running');
  return async () => {
    stopPipeline.abort();
    await pipeline;
  };
}

/**
 * The demo pipeline's worker token with a configured JWT_SECRET (loadConfig
 * lets DEMO_PIPELINE=true through only with one or in the embedded mode).
 * Kept in the process: never printed, never served.
 */
async function signDemoWorkerToken(config: Config): Promise<string> {
  if (config.auth.verify.kind !== 'hs256') throw new Error('the demo pipeline needs a secret to sign its worker token');
  const worker = DEMO_USERS.find((user) => user.role === 'worker')!;
  const secret = new TextEncoder().encode(config.auth.verify.secret);
  return signDemoUserToken(secret, worker, config.auth, config.auth.maxLifetimeSeconds);
}

/** How long a demo user's token lives unless asked otherwise. */
const DEMO_TOKEN_LIFETIME_SECONDS = 30 * 86_400;

/**
 * A demo user's token, with the issuer and audience this service checks, living
 * `lifetimeSeconds` (30 days by default), never longer than the service accepts
 * (TOKEN_MAX_LIFETIME_SECONDS): a longer one would be refused.
 */
export function demoTokenLifetimeSeconds(auth: AuthConfig, lifetimeSeconds = DEMO_TOKEN_LIFETIME_SECONDS): number {
  return Math.min(lifetimeSeconds, auth.maxLifetimeSeconds);
}

export function signDemoUserToken(secret: Uint8Array, user: DemoUser, auth: AuthConfig, lifetimeSeconds?: number): Promise<string> {
  return signToken(
    secret,
    { sub: user.userId, role: user.role, organization_id: user.organizationId },
    { issuer: auth.issuer, audience: auth.audience, expiresIn: `${demoTokenLifetimeSeconds(auth, lifetimeSeconds)}s` },
  );
}

/** A listening server's address as a URL a local client can use. */
function urlOf(server: Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
}

/**
 * server.close() only stops new connections: a keep-alive connection stays
 * open, and a client that keeps sending on it keeps the server from ever
 * stopping. Once drain() is called, every response (in flight or new) ends
 * its connection, so stopping waits for in-flight requests and no longer.
 */
function closeConnectionsWhenDone(server: Server): () => void {
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  server.prependListener('request', (_request, response: ServerResponse) => {
    if (draining) response.setHeader('connection', 'close');
    inFlight.add(response);
    response.once('close', () => inFlight.delete(response));
  });
  return () => {
    draining = true;
    for (const response of inFlight) {
      if (!response.headersSent) response.setHeader('connection', 'close');
      // Already answering with keep-alive: close the connection once it is idle.
      else response.once('finish', () => setImmediate(() => server.closeIdleConnections()));
    }
  };
}
