/**
 * The second peer, PostGraphile 4: serving the same database, in a
 * process of its own, started and stopped by bench/scale/peer.ts. Kept next
 * to PostGraphile 5 (peer-server-v5.ts) so runs from before v5 compare.
 *
 * PostGraphile 4 needs graphql 15 while the service uses graphql 16; npm
 * installs graphql 15 twice under PostGraphile's packages and hoists one of
 * its helpers next to our graphql 16, and graphql refuses types from
 * another copy ("Cannot use GraphQLScalarType from another module or
 * realm"). This process therefore resolves every `graphql` import to the
 * one copy under node_modules/postgraphile before PostGraphile loads.
 */
import { createServer, type Server } from 'node:http';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { serveRpc } from '../lib/rpc.js';

const require = createRequire(import.meta.url);
const postgraphileDir = path.dirname(require.resolve('postgraphile/package.json'));
const graphqlDir = path.dirname(require.resolve('graphql/package.json', { paths: [postgraphileDir] }));
type Resolve = (request: string, ...rest: unknown[]) => string;
const moduleWithResolve = Module as unknown as { _resolveFilename: Resolve };
const originalResolve = moduleWithResolve._resolveFilename;
moduleWithResolve._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
  if (request === 'graphql' || request.startsWith('graphql/')) {
    return originalResolve.call(this, graphqlDir + request.slice('graphql'.length), ...rest);
  }
  return originalResolve.call(this, request, ...rest);
};

let server: Server | undefined;
let pool: pg.Pool | undefined;
let middleware: { release?: () => Promise<void> } | undefined;

serveRpc(
  {
    async start(params: { databaseUrl: string; poolSize: number }) {
      const { postgraphile } = (await import('postgraphile')) as any;
      const version = (require(path.join(postgraphileDir, 'package.json')) as { version: string }).version;
      const graphqlVersion = (require(path.join(graphqlDir, 'package.json')) as { version: string }).version;
      pool = new pg.Pool({ connectionString: params.databaseUrl, max: params.poolSize, application_name: 'tracker-bench:postgraphile' });
      pool.on('error', () => undefined);
      middleware = postgraphile(pool, 'public', {
        graphqlRoute: '/graphql',
        graphiql: false,
        disableQueryLog: true,
        retryOnInitFail: false,
        watchPg: false,
        setofFunctionsContainNulls: false,
        enableQueryBatching: false,
      });
      server = createServer(middleware as any);
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}/graphql`, version, graphqlVersion, node: process.version };
    },
  },
  async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server?.closeAllConnections();
    await middleware?.release?.();
    await pool?.end();
  },
);
