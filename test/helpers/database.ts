/**
 * A fresh, isolated database per test file: PGlite loaded from the migrated
 * template dump, or a new server database cloned from the template database.
 * Nothing is mocked and nothing runs in a rolled-back transaction: NOTIFY
 * fires only on commit.
 */
import { readFile } from 'node:fs/promises';
import { inject } from 'vitest';
import { connectPostgres, openPglite, type Database, type QueryObserver } from '../../src/db/client.js';
import { databaseUrl, onServer, uniqueDatabaseName } from './postgres-admin.js';

export type TestDatabaseTarget =
  | { kind: 'pglite'; templateFile: string }
  | { kind: 'postgres'; serverUrl: string; templateName: string };

declare module 'vitest' {
  export interface ProvidedContext {
    testDatabase: TestDatabaseTarget;
  }
}

export type TestDatabase = {
  database: Database;
  kind: Database['kind'];
  /** The database's own URL on the server (postgres only): for extra connections or processes. */
  url?: string;
  close(): Promise<void>;
};

export function testDatabaseKind(): TestDatabaseTarget['kind'] {
  return inject('testDatabase').kind;
}

/** A database with every migration applied (`migrated: false`: an empty one). */
export async function createTestDatabase(
  options: { migrated?: boolean; poolSize?: number; onQuery?: QueryObserver; preparedStatements?: 'named' | 'unnamed' } = {},
): Promise<TestDatabase> {
  const migrated = options.migrated ?? true;
  const target = inject('testDatabase');
  if (target.kind === 'pglite') {
    const loadDataDir = migrated ? new Blob([await readFile(target.templateFile)]) : undefined;
    const database = await openPglite({ ...(loadDataDir ? { loadDataDir } : {}), onQuery: options.onQuery });
    return { database, kind: 'pglite', close: () => database.close() };
  }
  const name = uniqueDatabaseName('tracker_test');
  await onServer(
    target.serverUrl,
    migrated ? `create database ${name} template ${target.templateName}` : `create database ${name}`,
  );
  const url = databaseUrl(target.serverUrl, name);
  // Named, as the service's default (config.ts) is, unless a test says otherwise.
  const database = connectPostgres({ url, poolSize: options.poolSize ?? 10, onQuery: options.onQuery, preparedStatements: options.preparedStatements ?? 'named' });
  return {
    database,
    kind: 'postgres',
    url,
    async close() {
      await database.close();
      await onServer(target.serverUrl, `drop database if exists ${name} with (force)`);
    },
  };
}

/** Resolves once `condition` holds, polling briefly; fails with `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
