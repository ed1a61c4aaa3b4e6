/**
 * Migrations up and down, on either driver, safe when several processes start
 * at once: everything runs on one session holding a PostgreSQL advisory lock
 * (parallel migrators otherwise race on pg_namespace / pg_type).
 *
 * Up is Drizzle's migrator: all pending migrations in one transaction, so
 * nothing in drizzle/ may use CREATE INDEX CONCURRENTLY (see the README).
 * Down runs drizzle/rollback/<tag>.sql for the newest applied migration and
 * removes its journal row, in one transaction.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { Database } from './client.js';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));
const ROLLBACK_FOLDER = path.join(MIGRATIONS_FOLDER, 'rollback');
// Drizzle's own bookkeeping table.
const JOURNAL_TABLE = sql`drizzle.__drizzle_migrations`;
// Any constant both up and down share; hashtext keeps it readable.
const MIGRATION_LOCK = sql`hashtext('content-request-tracker:migrations')`;

type JournalEntry = { idx: number; when: number; tag: string };

async function readJournal(): Promise<JournalEntry[]> {
  const journal = JSON.parse(
    await readFile(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8'),
  ) as { entries: JournalEntry[] };
  return journal.entries;
}

type Session = Parameters<Parameters<Database['withSession']>[0]>[0];

// Advisory locks are re-entrant within one session, and PGlite is a single
// session: callers in one process queue here before taking the database lock.
const migrationQueues = new WeakMap<Database, Promise<unknown>>();

async function withMigrationLock<T>(
  database: Database,
  work: (session: Session) => Promise<T>,
): Promise<T> {
  const previous = migrationQueues.get(database) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => lockAndRun(database, work));
  migrationQueues.set(database, run);
  return run;
}

async function lockAndRun<T>(database: Database, work: (session: Session) => Promise<T>): Promise<T> {
  // The union's withSession signatures differ only in the session's driver type.
  const withSession = database.withSession as <R>(w: (s: Session) => Promise<R>) => Promise<R>;
  return withSession(async (session) => {
    await session.execute(sql`select pg_advisory_lock(${MIGRATION_LOCK})`);
    try {
      return await work(session);
    } finally {
      await session.execute(sql`select pg_advisory_unlock(${MIGRATION_LOCK})`);
    }
  });
}

/** Applies every pending migration. Returns the tags it applied. */
export async function migrateUp(database: Database): Promise<string[]> {
  return withMigrationLock(database, async (session) => {
    const before = new Set(await appliedTags(session));
    const config = { migrationsFolder: MIGRATIONS_FOLDER };
    if (database.kind === 'postgres') {
      await migrateNodePg(session as Parameters<typeof migrateNodePg>[0], config);
    } else {
      await migratePglite(session as Parameters<typeof migratePglite>[0], config);
    }
    return (await appliedTags(session)).filter((tag) => !before.has(tag));
  });
}

/** Undoes the newest `steps` applied migrations, newest first. Returns the tags it undid. */
export async function migrateDown(database: Database, steps = 1): Promise<string[]> {
  return withMigrationLock(database, async (session) => {
    const applied = (await appliedTags(session)).reverse().slice(0, steps);
    for (const tag of applied) {
      const statements = await readRollback(tag);
      await session.transaction(async (tx) => {
        for (const statement of statements) await tx.execute(sql.raw(statement));
        await tx.execute(sql`delete from ${JOURNAL_TABLE} where created_at = ${await whenOf(tag)}`);
      });
    }
    return applied;
  });
}

/** Tags of the applied migrations, oldest first. */
export async function appliedTags(session: Pick<Session, 'execute'>): Promise<string[]> {
  const exists = await session.execute<{ present: boolean }>(
    sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`,
  );
  if (!exists.rows[0]?.present) return [];
  const rows = await session.execute<{ created_at: string }>(
    sql`select created_at from ${JOURNAL_TABLE} order by created_at`,
  );
  const byWhen = new Map((await readJournal()).map((entry) => [String(entry.when), entry.tag]));
  return rows.rows.map((row) => byWhen.get(String(row.created_at)) ?? `unknown@${row.created_at}`);
}

async function whenOf(tag: string): Promise<number> {
  const entry = (await readJournal()).find((candidate) => candidate.tag === tag);
  if (!entry) throw new Error(`migration ${tag} is not in drizzle/meta/_journal.json`);
  return entry.when;
}

async function readRollback(tag: string): Promise<string[]> {
  const file = path.join(ROLLBACK_FOLDER, `${tag}.sql`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`migration ${tag} has no rollback (${file}); refusing to roll back past it`);
  }
  return text
    .split('--> statement-breakpoint')
    .map((statement) => statement.trim())
    .filter((statement) => statement.replace(/--.*$/gm, '').trim() !== '');
}
