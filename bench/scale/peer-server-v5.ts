/**
 * The peer, current major: PostGraphile 5 serving the same database, in a
 * process of its own, started and stopped by bench/scale/peer.ts. It is
 * installed under the npm alias `postgraphile5` next to v4 (peer-server.ts)
 * and uses the service's graphql 16 copy, which it accepts.
 *
 * PostGraphile 5 declares Node >= 22; on Node 20 grafserv fails every
 * request with "Promise.withResolvers is not a function". The polyfill below
 * exists in this process only, never in the service's; the libraries are
 * imported after it (dynamic imports, since static ones would run first).
 *
 * Configured as v4 is (peer-server.ts): the `public` schema, the Amber
 * preset (v4-style names, so the same query shape), no GraphiQL, no schema
 * watching, no LISTEN connection, no JWT or roles.
 */
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serveRpc } from '../lib/rpc.js';

type Resolvers<T> = { promise: Promise<T>; resolve: (value: T) => void; reject: (reason?: unknown) => void };
const promiseStatics = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
promiseStatics.withResolvers ??= <T>(): Resolvers<T> => {
  let resolve!: (value: T) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
};

// Production mode, as a deployment runs it (and without its notice about the variable).
process.env.GRAPHILE_ENV ??= 'production';

const require = createRequire(import.meta.url);

let server: Server | undefined;
let instance: { release(): unknown } | undefined;

serveRpc(
  {
    async start(params: { databaseUrl: string; poolSize: number }) {
      const { postgraphile } = await import('postgraphile5');
      const { PostGraphileAmberPreset } = await import('postgraphile5/presets/amber');
      const { makePgService } = await import('postgraphile5/adaptors/pg');
      const { grafserv } = await import('postgraphile5/grafserv/node');
      // Its package.json is not in its exports; the file beside its entry point is.
      const entry = require.resolve('postgraphile5');
      const version = (require(path.join(path.dirname(entry), 'version.js')) as { version: string }).version;
      const graphqlVersion = (require('graphql/package.json') as { version: string }).version;
      const pgl = postgraphile({
        extends: [PostGraphileAmberPreset],
        pgServices: [
          makePgService({
            connectionString: params.databaseUrl,
            poolConfig: { max: params.poolSize, application_name: 'tracker-bench:postgraphile5' },
            schemas: ['public'],
            pubsub: false,
          }),
        ],
        grafserv: { graphqlPath: '/graphql', graphiql: false, watch: false, websockets: false },
        grafast: { explain: false },
      });
      instance = pgl;
      const serv = pgl.createServ(grafserv);
      server = createServer();
      await serv.addTo(server);
      // Build the schema now, so the first timed request does not pay for it.
      await pgl.getSchema();
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}/graphql`, version, graphqlVersion, node: process.version };
    },
  },
  async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server?.closeAllConnections();
    // Ends the pool it made, too.
    await instance?.release();
  },
);
