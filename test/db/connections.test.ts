/**
 * Connections: one process per PGlite data folder (a second one fails with a
 * message naming the folder), the server listener's recovery from a killed
 * backend, and PGlite's own LISTEN.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DataDirectoryLockedError, openPglite, type Database } from '../../src/db/client.js';
import { parseLiveEventNotification, REQUEST_EVENTS_CHANNEL, type LiveEvent } from '../../src/services/live-events.js';
import { silentLogger } from '../../src/logger.js';
import { createTestDatabase, testDatabaseKind, waitFor, type TestDatabase } from '../helpers/database.js';
import { insertRequest } from '../helpers/factories.js';
import { listenerBackends as listenerBackendsOn } from '../helpers/committed.js';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPEN_DATA_DIR_FIXTURE = fileURLToPath(new URL('../fixtures/open-pglite-data-dir.ts', import.meta.url));

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

type ProcessResult = { code: number | null; stdout: string; stderr: string };

/** Runs the fixture in its own Node process, as a second service would start. */
function openInAnotherProcess(dataDir: string, note: string): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', OPEN_DATA_DIR_FIXTURE, dataDir, note], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function pgliteOf(database: Database) {
  if (database.kind !== 'pglite') throw new Error(`expected an embedded database, got ${database.kind}`);
  return database.pglite;
}

async function notesIn(database: Database): Promise<string[]> {
  const { rows } = await pgliteOf(database).query<{ note: string }>('select note from lock_probe order by id');
  return rows.map((r) => r.note);
}

describe.skipIf(testDatabaseKind() !== 'pglite')('a PGlite data folder is one process’s at a time', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'tracker-data-dir-lock-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test(
    'a second process is refused with a message naming the folder; after closing, the folder reopens with its data',
    async () => {
      const dataDir = path.join(root, 'data');
      const lockPath = `${dataDir}.lock`;
      const first = await openPglite({ dataDir });
      let firstClosed = false;
      try {
        await pgliteOf(first).exec('create table lock_probe (id serial primary key, note text not null)');
        await pgliteOf(first).query('insert into lock_probe (note) values ($1)', ['written by the first process']);
        expect(existsSync(lockPath)).toBe(true);

        // Another process (a second service on the same DATA_DIR) fails fast and clearly.
        const refused = await openInAnotherProcess(dataDir, 'written by the refused process');
        expect(refused.code, refused.stderr).not.toBe(0);
        expect(refused.code).not.toBeNull();
        expect(refused.stderr).toContain('DataDirectoryLockedError');
        expect(refused.stderr).toContain(`the data folder ${dataDir} is in use by another process`);
        expect(refused.stdout).toBe('');

        // So does a second open in this process.
        await expect(openPglite({ dataDir })).rejects.toBeInstanceOf(DataDirectoryLockedError);

        // The holder is unaffected, and the refused process wrote nothing.
        expect(await notesIn(first)).toEqual(['written by the first process']);

        await first.close();
        firstClosed = true;
        expect(existsSync(lockPath)).toBe(false);

        // Now another process opens it, sees what the first wrote, and adds its own.
        const reopened = await openInAnotherProcess(dataDir, 'written by the second process');
        expect(reopened.code, reopened.stderr).toBe(0);
        expect(JSON.parse(reopened.stdout.trim())).toEqual({ notes: ['written by the first process'] });
        expect(existsSync(lockPath)).toBe(false);

        // And both writes persist for the next opener.
        const again = await openPglite({ dataDir });
        try {
          expect(await notesIn(again)).toEqual(['written by the first process', 'written by the second process']);
        } finally {
          await again.close();
        }
      } finally {
        if (!firstClosed) await first.close();
      }
    },
    90_000,
  );
});

describe.skipIf(testDatabaseKind() !== 'postgres')('the server listener (pg-listen)', () => {
  const listenerBackends = () => {
    if (t.database.kind !== 'postgres') throw new Error('postgres only');
    return listenerBackendsOn(t.database.pool);
  };

  test('reconnects after its backend is terminated, tells onReconnect, and receives what is sent afterwards', async () => {
    const listener = await t.database.createNotificationListener(silentLogger);
    try {
      const received: LiveEvent[] = [];
      await listener.listen(REQUEST_EVENTS_CHANNEL, (payload) => received.push(parseLiveEventNotification(payload)));
      let reconnects = 0;
      listener.onReconnect(() => reconnects++);
      let removedCalls = 0;
      const unsubscribe = listener.onReconnect(() => removedCalls++);
      unsubscribe();

      const before = await listenerBackends();
      expect(before).toHaveLength(1);
      const oldPid = before[0]!.pid;

      const first = await insertRequest(t.database.db);
      await waitFor(() => received.some((n) => n.requestId === first.id), 'the first notification');
      expect(reconnects).toBe(0);

      const terminated = await t.database.db.execute<{ ok: boolean }>(sql`select pg_terminate_backend(${oldPid}) as ok`);
      expect(terminated.rows[0]!.ok).toBe(true);

      await waitFor(() => reconnects > 0, 'onReconnect after the backend was terminated', 15_000);
      expect(reconnects).toBe(1);
      expect(removedCalls).toBe(0);

      const after = await listenerBackends();
      expect(after).toHaveLength(1);
      expect(after[0]!.pid).not.toBe(oldPid);
      expect(after[0]!.application_name).toBe(before[0]!.application_name);

      // LISTEN was re-issued before onReconnect fired: what commits now arrives.
      const second = await insertRequest(t.database.db);
      await waitFor(() => received.some((n) => n.requestId === second.id), 'a notification sent after the reconnect');
      expect(received.find((n) => n.requestId === second.id)).toMatchObject({
        eventType: 'created',
        newStatus: 'pending',
        sequence: 1,
      });
      expect(reconnects).toBe(1);
    } finally {
      await listener.close();
    }
    // Closing ends the listening connection (and does not reconnect).
    await expect.poll(async () => (await listenerBackends()).length, { timeout: 5_000 }).toBe(0);
  });
});

describe.skipIf(testDatabaseKind() !== 'pglite')('the PGlite listener', () => {
  test('receives notifications raised on the same instance, and none once closed', async () => {
    const pglite = pgliteOf(t.database);
    const listener = await t.database.createNotificationListener(silentLogger);
    const sentinel = await t.database.createNotificationListener(silentLogger);
    try {
      const received: string[] = [];
      const sentinelReceived: string[] = [];
      await listener.listen(REQUEST_EVENTS_CHANNEL, (payload) => received.push(payload));
      await sentinel.listen(REQUEST_EVENTS_CHANNEL, (payload) => sentinelReceived.push(payload));

      // The trigger's notification for a write on this instance.
      const request = await insertRequest(t.database.db);
      await waitFor(() => received.length >= 1, 'the trigger notification');
      expect(parseLiveEventNotification(received[0]!)).toMatchObject({
        requestId: request.id,
        eventType: 'created',
        newStatus: 'pending',
        sequence: 1,
        progress: 0,
        studentId: request.studentId,
      });

      // A plain NOTIFY on the same instance, payload passed through untouched.
      await pglite.query(`select pg_notify($1, $2)`, [REQUEST_EVENTS_CHANNEL, 'raw payload']);
      await waitFor(() => received.includes('raw payload'), 'the raw notification');

      // onReconnect is accepted (an embedded database never reconnects).
      expect(typeof listener.onReconnect(() => undefined)).toBe('function');

      // After close, this listener gets nothing more, while another still does.
      await listener.close();
      const countAtClose = received.length;
      await pglite.query(`select pg_notify($1, $2)`, [REQUEST_EVENTS_CHANNEL, 'after close']);
      await waitFor(() => sentinelReceived.includes('after close'), 'the sentinel to receive the later notification');
      expect(received).toHaveLength(countAtClose);
      expect(received).not.toContain('after close');
    } finally {
      await listener.close();
      await sentinel.close();
    }
  });
});
