/**
 * The app factory: everything the service is, with no side effect until
 * start(). main.ts is the only file that reads the environment and listens
 * for signals; tests build apps here with their own database.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { migrateUp } from './db/migrate.js';
import { createTokenVerifier, developmentSecret, signToken } from './http/auth.js';
import { createGraphQLServer, type GraphQLServer } from './http/graphql-server.js';
import { createLogger, type Logger } from './logger.js';
import { seedDemoData, type DemoUser } from './services/demo.js';
import { rollupRequestMetrics } from './services/monitoring.js';
import type { Role } from './services/viewer.js';

export type DevelopmentToken = DemoUser & { token: string };

export type RunningApp = {
  /** Where the service listens, e.g. http://127.0.0.1:4000 */
  url: string;
  database: Database;
  graphql: GraphQLServer;
  /** Signed tokens for the demo users (embedded development mode only). */
  developmentTokens: DevelopmentToken[];
};

export type App = {
  start(): Promise<RunningApp>;
  /** Stops taking requests, lets in-flight ones finish, then closes the database. */
  stop(): Promise<void>;
};

export type AppOptions = {
  /** An already-open database (tests); the app then leaves closing it to the caller. */
  database?: Database;
  logger?: Logger;
};

const HOUR_MS = 3_600_000;

export function createApp(config: Config, options: AppOptions = {}): App {
  const logger = options.logger ?? createLogger(config.logLevel);
  let running:
    | { app: RunningApp; server: Server; ownsDatabase: boolean; timers: NodeJS.Timeout[]; drain: () => void }
    | undefined;

  async function start(): Promise<RunningApp> {
    if (running) return running.app;
    const ownsDatabase = !options.database;
    const database = options.database ?? (await openDatabase(config.database));
    try {
      const applied = await migrateUp(database);
      if (applied.length) logger.info({ applied }, 'migrations applied');

      const secret =
        config.auth.verify.kind === 'development'
          ? await developmentSecret(config.database.kind === 'pglite' ? config.database.dataDir : undefined)
          : undefined;
      const developmentTokens: DevelopmentToken[] = [];
      if (config.demoData) {
        const demoUsers = await seedDemoData(database.db);
        // Tokens only where this process signs them itself.
        const signingSecret = secret ?? (config.auth.verify.kind === 'hs256' ? new TextEncoder().encode(config.auth.verify.secret) : undefined);
        if (signingSecret) {
          for (const user of demoUsers) {
            const token = await signToken(
              signingSecret,
              { sub: user.userId, role: user.role, organization_id: user.organizationId },
              { issuer: config.auth.issuer, audience: config.auth.audience },
            );
            developmentTokens.push({ ...user, token });
          }
        }
      }

      const graphiqlTokens: Partial<Record<Role, string>> = {};
      for (const { role, token } of developmentTokens) graphiqlTokens[role] ??= token;
      const graphql = createGraphQLServer({
        db: database.db,
        verifyToken: createTokenVerifier(config.auth, secret),
        logger,
        graphiqlTokens,
      });

      const server = createServer(graphql);
      const drain = closeConnectionsWhenDone(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.http.port, config.http.host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;

      const timers: NodeJS.Timeout[] = [];
      if (config.metricsRollupIntervalMs > 0) {
        const rollup = () =>
          // The current and previous hour: a request's outcome can land an hour after it was created.
          rollupRequestMetrics(database.db, new Date(Date.now() - 2 * HOUR_MS)).catch((error: unknown) =>
            logger.error({ err: error }, 'metrics rollup failed'),
          );
        timers.push(setInterval(rollup, config.metricsRollupIntervalMs).unref());
        void rollup();
      }

      const app = { url, database, graphql, developmentTokens };
      running = { app, server, ownsDatabase, timers, drain };
      logger.info({ url: `${url}/graphql`, database: database.kind }, 'content request tracker ready');
      return app;
    } catch (error) {
      if (ownsDatabase) await database.close();
      throw error;
    }
  }

  async function stop(): Promise<void> {
    if (!running) return;
    const { app, server, ownsDatabase, timers, drain } = running;
    running = undefined;
    timers.forEach(clearInterval);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      drain();
    });
    await app.graphql.dispose();
    if (ownsDatabase) await app.database.close();
    logger.info('stopped');
  }

  return { start, stop };
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
