/**
 * npm run db:report
 *
 * The database's health, for an operator: index usage (pg_stat_user_indexes),
 * indexes never scanned, table and index sizes, dead tuples, and the slowest
 * statements when pg_stat_statements is installed. On DATABASE_URL when set,
 * else on the PGlite folder DATA_DIR, which only one process may open: stop
 * the service first (embedded PGlite keeps no usage statistics across
 * restarts, so there the sizes and row counts are what it can tell).
 */
import { sql } from 'drizzle-orm';
import { loadDatabaseConfig } from '../src/config.js';
import { DataDirectoryLockedError, openDatabase, type Database } from '../src/db/client.js';

type Row = Record<string, unknown>;

const SECTIONS: { title: string; note: string; query: string }[] = [
  {
    title: 'Index usage',
    note: 'scans since the statistics were last reset, busiest first',
    query: `
      select s.relname as table, s.indexrelname as index, s.idx_scan as scans,
             s.idx_tup_read as entries_read, s.idx_tup_fetch as rows_fetched,
             pg_size_pretty(pg_relation_size(s.indexrelid)) as size
        from pg_stat_user_indexes s
       order by s.idx_scan desc, s.relname, s.indexrelname`,
  },
  {
    title: 'Unused indexes',
    note: 'never scanned since the statistics were reset; unique and primary keys left out, they enforce a rule',
    query: `
      select s.relname as table, s.indexrelname as index,
             pg_size_pretty(pg_relation_size(s.indexrelid)) as size
        from pg_stat_user_indexes s
        join pg_index i on i.indexrelid = s.indexrelid
       where s.idx_scan = 0 and not i.indisunique
       order by pg_relation_size(s.indexrelid) desc, s.relname, s.indexrelname`,
  },
  {
    title: 'Table and index sizes',
    note: 'largest first; rows as the planner estimates them',
    query: `
      select c.relname as table,
             case when c.reltuples < 0 then 'not analyzed' else c.reltuples::bigint::text end as rows,
             pg_size_pretty(pg_table_size(c.oid)) as table_size,
             pg_size_pretty(pg_indexes_size(c.oid)) as index_size,
             pg_size_pretty(pg_total_relation_size(c.oid)) as total
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
       where c.relkind in ('r', 'p') and n.nspname = 'public'
       order by pg_total_relation_size(c.oid) desc, c.relname`,
  },
  {
    title: 'Dead tuples',
    note: 'rows left by updates and deletes until vacuum reclaims them',
    query: `
      select relname as table, n_live_tup as live, n_dead_tup as dead,
             case when n_live_tup + n_dead_tup = 0 then '0%'
                  else round(100.0 * n_dead_tup / (n_live_tup + n_dead_tup), 1) || '%' end as dead_share,
             coalesce(greatest(last_vacuum, last_autovacuum)::text, 'never') as last_vacuum
        from pg_stat_user_tables
       order by n_dead_tup desc, relname`,
  },
];

const SLOWEST_STATEMENTS = `
  select calls, round(mean_exec_time::numeric, 2) as mean_ms, round(total_exec_time::numeric, 0) as total_ms,
         rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) as statement
    from pg_stat_statements
   where dbid = (select oid from pg_database where datname = current_database())
   order by mean_exec_time desc
   limit 10`;

async function rowsOf(database: Database, query: string): Promise<Row[]> {
  const result = (await database.db.execute(sql.raw(query))) as unknown as { rows: Row[] };
  return result.rows;
}

/** Rows as an aligned text table. */
function table(rows: Row[]): string {
  if (rows.length === 0) return '  (none)';
  const columns = Object.keys(rows[0]!);
  const cells = rows.map((row) => columns.map((column) => String(row[column] ?? '')));
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((line) => line[i]!.length)));
  const line = (values: string[]) => `  ${values.map((value, i) => value.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  return [line(columns), line(widths.map((width) => '-'.repeat(width))), ...cells.map(line)].join('\n');
}

async function slowestStatements(database: Database): Promise<string> {
  if (database.kind === 'pglite') return '  not available in embedded PGlite (a PostgreSQL server extension)';
  const [installed] = await rowsOf(database, `select count(*)::int as n from pg_extension where extname = 'pg_stat_statements'`);
  if (!installed || installed.n === 0) {
    return "  pg_stat_statements is not installed: add it to shared_preload_libraries, restart, and run CREATE EXTENSION pg_stat_statements";
  }
  try {
    return table(await rowsOf(database, SLOWEST_STATEMENTS));
  } catch (error) {
    // Installed but not preloaded: the view exists and refuses to be read.
    return `  pg_stat_statements is installed but cannot be read: ${(error as Error).message}`;
  }
}

const config = loadDatabaseConfig();
let database: Database;
try {
  database = await openDatabase(config);
} catch (error) {
  if (error instanceof DataDirectoryLockedError) {
    console.error(`${error.message}\nStop the service using DATA_DIR first, or run the report with DATABASE_URL.`);
    process.exit(1);
  }
  throw error;
}
try {
  const [server] = await rowsOf(database, `select current_database() as name, version() as version,
    (select stats_reset::text from pg_stat_database where datname = current_database()) as stats_reset`);
  console.log(`Database report: ${config.kind === 'postgres' ? 'PostgreSQL (DATABASE_URL)' : `PGlite (${config.dataDir})`}`);
  console.log(`${String(server!.version).split(',')[0]}; statistics since ${String(server!.stats_reset ?? 'the server started')}`);
  if (config.kind === 'pglite') console.log('Embedded PGlite starts its usage statistics afresh each time it opens: index scans and dead tuples count only this session.');
  for (const section of SECTIONS) {
    console.log(`\n== ${section.title} (${section.note})\n${table(await rowsOf(database, section.query))}`);
  }
  console.log(`\n== Slowest statements (pg_stat_statements, by mean time)\n${await slowestStatements(database)}`);
} finally {
  await database.close();
}
