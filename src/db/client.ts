/**
 * The connection factory: a `pg` pool when a server URL is configured, else
 * embedded PGlite persisted in a data folder (or in memory). Both hand out the
 * same Drizzle API and the same notification interface.
 */
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite, type PgliteDatabase } from 'drizzle-orm/pglite';
import { drizzle as drizzleNodePg, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import pg from 'pg';
import lockfile from 'proper-lockfile';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import {
  createPgliteNotificationListener,
  createPgNotificationListener,
  type NotificationListener,
} from './notifications.js';
import * as tables from './tables.js';

export type Schema = typeof tables;

/** Either driver's Drizzle database. */
export type Db = NodePgDatabase<Schema> | PgliteDatabase<Schema>;

/** What services take: either driver's database, or a transaction of it. */
export type Queryable = PgDatabase<PgQueryResultHKT, Schema>;

type DatabaseCommon = {
  /** Opens the notification listener: its own connection on a server, the instance itself when embedded. */
  createNotificationListener(logger: Logger): Promise<NotificationListener>;
  close(): Promise<void>;
};

export type Database =
  | (DatabaseCommon & {
      kind: 'postgres';
      db: NodePgDatabase<Schema>;
      pool: pg.Pool;
      /** Runs `work` on one dedicated connection (session state such as advisory locks holds). */
      withSession<T>(work: (session: NodePgDatabase<Schema>) => Promise<T>): Promise<T>;
    })
  | (DatabaseCommon & {
      kind: 'pglite';
      db: PgliteDatabase<Schema>;
      pglite: PGlite;
      withSession<T>(work: (session: PgliteDatabase<Schema>) => Promise<T>): Promise<T>;
    });

export type QueryObserver = (query: string, params: unknown[]) => void;

const drizzleLogger = (onQuery: QueryObserver | undefined) =>
  onQuery ? { logger: { logQuery: onQuery } } : {};

/**
 * Statements built once (services/prepared.ts) may be sent as named prepared
 * statements: PostgreSQL then parses each once per connection and may keep
 * its plan, where an unnamed one is parsed and planned on every execution.
 * At most this many names per database, so no client's choice of shapes
 * (filters, columns) can fill the server's connections with statements.
 */
export const MAX_NAMED_STATEMENTS = 100;

const namedStatements = new WeakMap<object, { left: number }>();
let statementCount = 0;

/**
 * The name a statement built once for `db` goes by: a new one while `db` is
 * a pool opened with named statements and has names left, else '' (unnamed).
 */
export function nameForStatement(db: Queryable): string {
  const budget = namedStatements.get(db);
  if (!budget || budget.left === 0) return '';
  budget.left--;
  return `tracker_${++statementCount}`;
}

export type PostgresOptions = {
  url: string;
  /**
   * 'named' (the service's default, config.ts): statements built once are prepared on each
   * connection. 'unnamed' (this function's default): for a transaction-mode pooler (pgbouncer
   * before 1.21), which may hand the next transaction a connection without them.
   */
  preparedStatements?: 'named' | 'unnamed';
  /** Where LISTEN connects; defaults to `url`. */
  listenUrl?: string;
  poolSize?: number;
  applicationName?: string;
  /** Sees every SQL statement Drizzle sends (tests count them; debugging logs them). */
  onQuery?: QueryObserver;
};

/**
 * pg copies a query's config object before each run, property descriptor by
 * property descriptor, so that it can add the values to its own copy (about
 * 2 µs a query here, 1.6% of a history page's CPU). Drizzle hands it the same
 * config object on every run of a prepared statement; handed an empty object
 * that inherits from that one, pg copies nothing and reads the same
 * properties. (Transactions query through a checked-out client: not here.)
 */
class Pool extends pg.Pool {
  // pg's overloads, passed on as given.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(config: any, ...rest: any[]): any {
    const inherited = typeof config === 'object' && config !== null && typeof config.submit !== 'function';
    return (super.query as (...args: unknown[]) => unknown)(inherited ? Object.create(config) : config, ...rest);
  }
}

export function connectPostgres(options: PostgresOptions): Database {
  const applicationName = options.applicationName ?? 'content-request-tracker';
  const pool = new Pool({
    connectionString: options.url,
    max: options.poolSize ?? 20,
    application_name: applicationName,
  });
  // An idle client's error (a server restart, say) must not crash the process;
  // the pool drops that client and the next query opens a new one.
  pool.on('error', () => undefined);
  // A checked-out client emits its own 'error' (the pool listens only while it
  // is idle), and an unheard 'error' event ends the process. The statement in
  // flight is rejected anyway, and the pool discards the dead client on release.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = drizzleNodePg(pool, { schema: tables, ...drizzleLogger(options.onQuery) });
  if (options.preparedStatements === 'named') namedStatements.set(db, { left: MAX_NAMED_STATEMENTS });
  return {
    kind: 'postgres',
    db,
    pool,
    async withSession(work) {
      const client = await pool.connect();
      try {
        return await work(drizzleNodePg(client, { schema: tables, ...drizzleLogger(options.onQuery) }));
      } finally {
        client.release();
      }
    },
    createNotificationListener(logger) {
      return createPgNotificationListener({
        connectionString: options.listenUrl ?? options.url,
        logger,
        applicationName: `${applicationName}:listener`,
      });
    },
    async close() {
      await pool.end();
    },
  };
}

export class DataDirectoryLockedError extends Error {
  override name = 'DataDirectoryLockedError';
}

export type PgliteOptions = {
  /** A folder to persist in, or undefined / `memory://` for an in-memory database. */
  dataDir?: string;
  /** A dump (`pglite.dumpDataDir()`) to start from; tests use a migrated template. */
  loadDataDir?: Blob;
  onQuery?: QueryObserver;
};

export async function openPglite(options: PgliteOptions = {}): Promise<Database> {
  const inMemory = !options.dataDir || options.dataDir.startsWith('memory://');
  let releaseLock: (() => Promise<void>) | undefined;
  if (!inMemory) {
    releaseLock = await lockDataDirectory(path.resolve(options.dataDir!));
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(inMemory ? {} : { dataDir: path.resolve(options.dataDir!) }),
      ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
    });
  } catch (error) {
    await releaseLock?.();
    throw error;
  }
  const db = drizzlePglite(pglite, { schema: tables, ...drizzleLogger(options.onQuery) });
  return {
    kind: 'pglite',
    db,
    pglite,
    // One connection: every query is already on the same session.
    withSession: (work) => work(db),
    async createNotificationListener() {
      return createPgliteNotificationListener(pglite);
    },
    async close() {
      if (!pglite.closed) await pglite.close();
      await releaseLock?.();
    },
  };
}

/**
 * Two processes writing one PGlite folder silently lose writes, so the second
 * one to open it must fail. proper-lockfile's lock is a sibling directory
 * (`<dataDir>.lock`, made atomically, refreshed while we run); we write our
 * pid and host into it, so a lock whose holder has died (kill -9, a crash) is
 * taken over at once. One nobody refreshes for 10 s is stale whatever its
 * owner says (a holder on another host, or a pid reused since).
 */
async function lockDataDirectory(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const lockPath = `${dataDir}.lock`;
  const ownerPath = path.join(lockPath, 'owner.json');
  const inUse = () =>
    new DataDirectoryLockedError(
      `the data folder ${dataDir} is in use by another process (lock: ${lockPath}). ` +
        'Stop that process, or set DATA_DIR to another folder, or DATABASE_URL to use a PostgreSQL server.',
    );
  // proper-lockfile takes a change of the lock's mtime for another process
  // taking it over, and adding or removing a file inside changes it: so put it back.
  const keepingLockTime = async (change: () => Promise<void>) => {
    const { atime, mtime } = await stat(lockPath);
    await change();
    await utimes(lockPath, atime, mtime);
  };
  const acquire = async () => {
    const release = await lockfile.lock(dataDir, { stale: 10_000, update: 2_000, retries: 0 });
    await keepingLockTime(() => writeFile(ownerPath, JSON.stringify({ pid: process.pid, host: hostname() })));
    return async () => {
      // proper-lockfile removes the lock with rmdir: empty it first.
      await keepingLockTime(() => rm(ownerPath, { force: true }));
      await release();
    };
  };

  for (let attempt = 1; ; attempt++) {
    try {
      return await acquire();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // ENOTEMPTY: proper-lockfile found it stale by time and could not rmdir our owner file.
      const stale = code === 'ENOTEMPTY' || (code === 'ELOCKED' && (await holderIsDead(ownerPath)));
      if (!stale) throw code === 'ELOCKED' ? inUse() : error;
      if (attempt > 1 || !(await takeOver(lockPath, ownerPath))) throw inUse();
    }
  }
}

type LockOwner = { pid: number; host: string };

async function readOwner(ownerPath: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(ownerPath, 'utf8')) as Partial<LockOwner>;
    return typeof owner.pid === 'number' && typeof owner.host === 'string' ? (owner as LockOwner) : undefined;
  } catch {
    return undefined; // none yet (its holder is between mkdir and writing it), or unreadable: treat as alive
  }
}

async function holderIsDead(ownerPath: string): Promise<boolean> {
  const owner = await readOwner(ownerPath);
  if (!owner || owner.host !== hostname() || owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Moves the dead holder's lock aside (a rename: of two processes taking over
 * at once, one wins) and removes it. If what was moved turns out not to be a
 * dead holder's (another process took over and locked in between), it is put
 * back and the folder is in use.
 */
async function takeOver(lockPath: string, ownerPath: string): Promise<boolean> {
  const seen = await readOwner(ownerPath);
  const aside = `${lockPath}.stale-${process.pid}-${Date.now()}`;
  try {
    await rename(lockPath, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true; // gone already: just lock
    throw error;
  }
  const moved = await readOwner(path.join(aside, 'owner.json'));
  if (moved && (moved.pid !== seen?.pid || moved.host !== seen?.host)) {
    await rename(aside, lockPath).catch(() => undefined);
    return false;
  }
  await rm(aside, { recursive: true, force: true });
  return true;
}

export function openDatabase(config: Config['database']): Promise<Database> {
  if (config.kind === 'postgres') {
    return Promise.resolve(
      connectPostgres({ url: config.url, listenUrl: config.listenUrl, poolSize: config.poolSize, preparedStatements: config.preparedStatements }),
    );
  }
  return openPglite({ dataDir: config.dataDir });
}
