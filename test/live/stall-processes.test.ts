/**
 * Two server processes on one PostgreSQL database, as two replicas: the stall
 * check runs in one of them at a time, so one stall is exactly one
 * STAGE_STALLED event, and it reaches subscribers on both processes; when the
 * process holding the check's lease is killed (SIGKILL: no clean release),
 * the other takes the check over and marks the next stall.
 *
 * PGlite is one process per data folder, so this runs in the postgres project only.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signToken, type TokenClaims } from '../../src/http/auth.js';
import { TEST_JWT_SECRET } from '../helpers/app.js';
import { createTestDatabase, testDatabaseKind, type TestDatabase } from '../helpers/database.js';
import { connectWs, PROGRESS, subscribeSse, type WsConnection } from '../helpers/live.js';
import { reportStage, submitRequest } from '../helpers/requests.js';
import { killAll, spawnReplica, START_TIMEOUT_MS, waitUntilReady, type Replica } from '../helpers/service-process.js';
import { afterAWholeRun, backdateStage, stallEventsOf } from '../helpers/stalls.js';

describe.skipIf(testDatabaseKind() !== 'postgres')('the stall check with two server processes', () => {
  let testDatabase: TestDatabase;
  let a: Replica;
  let b: Replica;
  const sockets: WsConnection[] = [];
  const tokens = { student: '', worker: '' };
  const db = () => testDatabase.database.db;
  const sign = (claims: TokenClaims) => signToken(new TextEncoder().encode(TEST_JWT_SECRET), claims);

  // Checks often; only backdated stages are old enough to stall.
  const startService = (name: string) =>
    spawnReplica(testDatabase.url!, name, { STALL_CHECK_INTERVAL_SECONDS: '0.3', STALL_FACTOR: '100' });

  /** The process whose pid is in the stall check's lease. */
  async function leaseHolder(): Promise<Replica | undefined> {
    const result = (await db().execute(sql`select holder from job_leases where job_name = 'stall-check'`)) as { rows: { holder: string }[] };
    const pid = Number(result.rows[0]?.holder.split(':')[1]);
    return [a, b].find((service) => service.child.pid === pid);
  }

  async function runningRequest(via: Replica): Promise<string> {
    const { id } = await submitRequest({ url: via.url, token: tokens.student });
    await reportStage({ url: via.url, token: tokens.worker }, id, 'validation', 'IN_PROGRESS');
    return id;
  }

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    tokens.student = await sign({ sub: 'stall-replica-student', role: 'student', organization_id: 'stall-replica-org' });
    tokens.worker = await sign({ sub: 'stall-replica-worker', role: 'worker' });
    [a, b] = await Promise.all([startService('process A'), startService('process B')]);
    await Promise.all([waitUntilReady(a, a.url), waitUntilReady(b, b.url)]);
  }, START_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.dispose()));
    await killAll([a, b]);
    await testDatabase?.close();
  });

  test('one stall: exactly one STAGE_STALLED event, delivered live to a subscriber of each process', async () => {
    const id = await runningRequest(a);
    const socket = connectWs(a.url, tokens.student);
    sockets.push(socket);
    const onA = socket.subscribe(PROGRESS, { id });
    const onB = await subscribeSse(b.url, tokens.student, PROGRESS, { id });
    await Promise.all([onA.waitForPayloads(1), onB.waitForPayloads(1)]);

    await backdateStage(db(), id, 'validation');
    for (const subscription of [onA, onB]) {
      const [, stalled] = await subscription.waitForPayloads(2);
      expect(stalled).toMatchObject({ kind: 'EVENT', requestId: id, stage: 'validation' });
      expect(stalled!.event.eventType).toBe('STAGE_STALLED');
    }

    // Both processes have ticked many times since: still one event.
    await afterAWholeRun(db(), 'stall-check');
    expect(await stallEventsOf(db(), id)).toHaveLength(1);
    expect(onA.payloads().filter((update) => update.event?.eventType === 'STAGE_STALLED')).toHaveLength(1);
    expect(onB.payloads().filter((update) => update.event?.eventType === 'STAGE_STALLED')).toHaveLength(1);
    await onB.close();
  });

  test('the lease holder is killed: the other process takes the check over and marks the next stall', async () => {
    const holder = await leaseHolder();
    expect(holder, 'the stall check lease names one of the two processes').toBeDefined();
    const survivor = holder === a ? b : a;
    holder!.child.kill('SIGKILL');
    await holder!.exited;

    const id = await runningRequest(survivor);
    const onSurvivor = await subscribeSse(survivor.url, tokens.student, PROGRESS, { id });
    await onSurvivor.waitForPayloads(1);
    await backdateStage(db(), id, 'validation');

    // The dead holder's lease runs out (two intervals), then the survivor's next tick takes it.
    const [, stalled] = await onSurvivor.waitForPayloads(2, 15_000);
    expect(stalled!.event.eventType).toBe('STAGE_STALLED');
    expect(await leaseHolder()).toBe(survivor);
    expect(await stallEventsOf(db(), id)).toHaveLength(1);
    await onSurvivor.close();
  });
});
