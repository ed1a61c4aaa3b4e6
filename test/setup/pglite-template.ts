/**
 * Migrates one in-memory PGlite and dumps it to a temporary file; each test
 * file starts its own PGlite from that dump (migrating takes longer than loading).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { openPglite } from '../../src/db/client.js';
import { migrateUp } from '../../src/db/migrate.js';

export default async function setup(project: TestProject) {
  const folder = await mkdtemp(path.join(tmpdir(), 'tracker-pglite-template-'));
  const templateFile = path.join(folder, 'template.tar');
  const database = await openPglite();
  try {
    await migrateUp(database);
    if (database.kind !== 'pglite') throw new Error('unreachable');
    const dump = await database.pglite.dumpDataDir('none');
    await writeFile(templateFile, Buffer.from(await dump.arrayBuffer()));
  } finally {
    await database.close();
  }
  project.provide('testDatabase', { kind: 'pglite', templateFile });
  return async () => {
    await rm(folder, { recursive: true, force: true });
  };
}
