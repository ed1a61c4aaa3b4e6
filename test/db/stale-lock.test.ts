/**
 * The PGlite data folder's lock after kill -9: its holder is dead, so the
 * next start takes it over at once (it used to refuse "in use by another
 * process" until the lock went stale, ~10 s), while a live holder still
 * refuses a second process.
 *
 * Embedded mode only: it does not use the test database.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { exitWithin, freePort, spawnService, START_TIMEOUT_MS, type ServiceProcess } from '../helpers/service-process.js';

const READY = /^ {2}worker\s+\S+\s+Authorization: Bearer \S+$/m;
const services: ServiceProcess[] = [];
const start = (env: Record<string, string>) => {
  const service = spawnService(env);
  services.push(service);
  return service;
};

describe.skipIf(inject('testDatabase').kind === 'postgres')('a data folder whose holder was killed', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'tracker-stale-lock-'));
  });
  afterAll(async () => {
    for (const service of services) {
      if (!service.hasExited()) {
        service.child.kill('SIGKILL');
        await service.exited;
      }
    }
    await rm(root, { recursive: true, force: true });
  });

  test(
    'after kill -9 the next start opens it on its first attempt; while that one runs, a second is refused',
    async () => {
      const dataDir = path.join(root, 'data');
      const port = String(await freePort());
      const first = start({ DATA_DIR: dataDir, PORT: port });
      await first.waitForOutput(READY);
      first.child.kill('SIGKILL');
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

      // Straight away, once: no waiting for the lock to go stale.
      const restarted = start({ DATA_DIR: dataDir, PORT: port });
      await restarted.waitForOutput(READY);
      expect(restarted.stderr()).not.toContain('in use by another process');
      expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);

      // A live holder still keeps everyone else out.
      const second = start({ DATA_DIR: dataDir, PORT: String(await freePort()) });
      const { code } = await exitWithin(second, START_TIMEOUT_MS);
      expect(code).toBe(1);
      expect(second.stderr()).toContain(`the data folder ${dataDir} is in use by another process`);
      expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);

      restarted.child.kill('SIGTERM');
      expect((await exitWithin(restarted, 10_000)).code).toBe(0);

      // A clean stop leaves the folder free for the next one too.
      const third = start({ DATA_DIR: dataDir, PORT: port });
      await third.waitForOutput(READY);
      third.child.kill('SIGTERM');
      expect((await exitWithin(third, 10_000)).code).toBe(0);
    },
    4 * START_TIMEOUT_MS,
  );
});
