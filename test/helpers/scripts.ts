/**
 * The operator's scripts (scripts/*.ts) run as their own processes, the way a
 * person runs them, against a migrated database the test can read and write
 * too: the test file's server database, or on PGlite a data folder of its own.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { openDatabase, type Db } from '../../src/db/client.js';
import { migrateUp } from '../../src/db/migrate.js';
import { createTestDatabase, testDatabaseKind } from './database.js';
import { ROOT, serviceEnvironment } from './service-process.js';

const run = promisify(execFile);

export type ScriptRun = { code: number; stdout: string; stderr: string };

/** `node --import tsx scripts/<script> …args`, never throwing on a non-zero exit. */
export async function runScript(script: string, args: string[], env: Record<string, string>): Promise<ScriptRun> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', `scripts/${script}`, ...args], {
      cwd: ROOT,
      env: serviceEnvironment({ LOG_LEVEL: 'silent', ...env }),
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

export type ScriptDatabase = {
  /** What the script needs in its environment to open this database. */
  env: Record<string, string>;
  /** Runs `work` on the database; on PGlite the folder is closed again afterwards, so a script can open it. */
  use<T>(work: (db: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
};

export async function createScriptDatabase(): Promise<ScriptDatabase> {
  if (testDatabaseKind() === 'postgres') {
    const testDatabase = await createTestDatabase();
    return { env: { DATABASE_URL: testDatabase.url! }, use: (work) => work(testDatabase.database.db), close: () => testDatabase.close() };
  }
  // Only one process may open a PGlite folder at a time.
  const dataDir = await mkdtemp(path.join(tmpdir(), 'script-database-'));
  const use = async <T>(work: (db: Db) => Promise<T>) => {
    const database = await openDatabase({ kind: 'pglite', dataDir });
    try {
      await migrateUp(database);
      return await work(database.db);
    } finally {
      await database.close();
    }
  };
  return { env: { DATA_DIR: dataDir }, use, close: () => rm(dataDir, { recursive: true, force: true }) };
}
