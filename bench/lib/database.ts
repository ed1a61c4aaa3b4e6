/**
 * A new database per benchmark run on the server named by DATABASE_URL,
 * migrated with the service's own migrator, and dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connectPostgres } from '../../src/db/client.js';
import { migrateUp } from '../../src/db/migrate.js';

export const DEFAULT_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export type BenchDatabase = {
  name: string;
  url: string;
  /** Drops the database (forcing out any connection left open). Safe to call twice. */
  drop(): Promise<void>;
};

export function databaseUrl(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function onServer<T>(serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl, application_name: 'tracker-bench:admin' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Drops of the databases still in use, for an interrupted run to call before it exits. */
export const pendingDrops = new Set<() => Promise<void>>();

export async function createBenchDatabase(serverUrl: string, suite: string): Promise<BenchDatabase> {
  const name = `tracker_bench_${suite}_${randomBytes(5).toString('hex')}`;
  await onServer(serverUrl, (client) => client.query(`create database ${name}`));
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    pendingDrops.delete(drop);
    await onServer(serverUrl, (client) => client.query(`drop database if exists ${name} with (force)`));
  };
  pendingDrops.add(drop);
  const url = databaseUrl(serverUrl, name);
  try {
    const database = connectPostgres({ url, poolSize: 1, applicationName: 'tracker-bench:migrate' });
    try {
      await migrateUp(database);
    } finally {
      await database.close();
    }
  } catch (error) {
    await drop();
    throw error;
  }
  return { name, url, drop };
}

export type ServerInfo = { version: string; settings: Record<string, string> };

/** The server's version and the settings that shape commit and notify costs. */
export async function serverInfo(serverUrl: string): Promise<ServerInfo> {
  return onServer(serverUrl, async (client) => {
    const version = await client.query<{ server_version: string }>('show server_version');
    const settings = await client.query<{ name: string; setting: string; unit: string | null }>(
      `select name, setting, unit from pg_settings
        where name in ('synchronous_commit', 'fsync', 'wal_sync_method', 'shared_buffers', 'max_connections', 'commit_delay', 'autovacuum')
        order by name`,
    );
    return {
      version: version.rows[0]!.server_version,
      settings: Object.fromEntries(settings.rows.map((row) => [row.name, row.unit ? `${row.setting} × ${row.unit}` : row.setting])),
    };
  });
}
