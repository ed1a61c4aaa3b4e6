/**
 * The typed client through a service restart: the service stops (its streams
 * complete, new connections are refused), the request moves on meanwhile,
 * and a new service process starts on the same database at another port.
 * The watch reconnects by itself and every sequence arrives exactly once.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startService, type StartedService } from '../../bench/lib/service.js';
import { signToken } from '../../src/http/auth.js';
import { STAGES, TEST_JWT_SECRET } from '../helpers/app.js';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/database.js';
import { driveToCompletion, reportStage, reportStageIn, submitRequest } from '../helpers/requests.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { collect, trackerClient } from '../helpers/tracker-client.js';

let testDatabase: TestDatabase;
let proxy: TcpProxy;
let service: StartedService;
const tokens = { student: '', worker: '' };

const start = () =>
  startService(
    { DATABASE_URL: 'postgres://unused.invalid/unused', JWT_SECRET: TEST_JWT_SECRET, RATE_LIMIT_MUTATIONS_PER_MINUTE: '0' },
    { database: testDatabase.database, logger: pino({ level: 'silent' }) },
  );

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  service = await start();
  proxy = await startTcpProxy(service.running.url);
  const secret = new TextEncoder().encode(TEST_JWT_SECRET);
  tokens.student = await signToken(secret, { sub: 'restart-student', role: 'student', organization_id: 'restart-org' });
  tokens.worker = await signToken(secret, { sub: 'restart-worker', role: 'worker' });
});
afterAll(async () => {
  await proxy?.close();
  await service?.stop();
  await testDatabase?.close();
});

describe.each(['ws', 'sse'] as const)('over %s', (transport) => {
  test('the service stops and another starts: the watch reconnects and every sequence arrives once, in order', async () => {
    const client = trackerClient(proxy.url, transport, () => tokens.student);
    try {
      const { id } = await submitRequest({ url: service.running.url, token: tokens.student });
      const watched = collect(client.watchRequest(id));
      await watched.waitForUpdates((updates) => updates.length >= 1, 'the snapshot');
      await reportStage({ url: service.running.url, token: tokens.worker }, id, STAGES[0], 'IN_PROGRESS');
      await watched.waitForUpdates((updates) => updates.length >= 2, 'the first change');

      await service.stop();
      await waitFor(() => client.states.at(-1) === 'reconnecting', 'the client reconnecting');
      // The request moves on while no service is up.
      await reportStageIn(testDatabase.database.db, id, STAGES[0], 'completed');
      service = await start();
      proxy.retarget(service.running.url);

      await driveToCompletion({ url: service.running.url, token: tokens.worker }, id, { from: STAGES[1] });
      expect(await watched.ended).toEqual({});
      const sequences = watched.updates.map((update) => update.sequence);
      expect(sequences).toEqual(sequences.map((_, i) => i + 1));
      expect(watched.updates.at(-1)?.status).toBe('COMPLETED');
      expect(client.states.slice(-2)).toEqual(['reconnecting', 'live']);
    } finally {
      await client.close();
    }
  });
});
