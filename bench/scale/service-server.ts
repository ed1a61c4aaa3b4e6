/**
 * The service for the peer phase, in a process of its own as each
 * PostGraphile is (bench/scale/peer.ts): started fresh, serving only the
 * page being timed, its CPU counted apart from the benchmark's. In the
 * benchmark's own process, after the live suite and the query patterns, the
 * same service measured 1.31–1.41× PostGraphile 5 where a fresh process
 * measured 1.52–1.60× (bench/README.md, "Reads, eleventh pass").
 */
import { serveRpc } from '../lib/rpc.js';
import { startBenchService, type StartedService } from '../lib/service.js';

let service: StartedService | undefined;

serveRpc(
  {
    async start(params: { databaseUrl: string; poolSize: number }) {
      service = await startBenchService(params.databaseUrl, { DATABASE_POOL_SIZE: String(params.poolSize) });
      return { url: `${service.running.url}/graphql` };
    },
  },
  async () => {
    await service?.stop();
  },
);
