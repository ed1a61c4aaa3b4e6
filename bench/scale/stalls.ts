/**
 * The stalls phase: the stall check (`mark_stalled_stages()`, drizzle/0010)
 * on the loaded database. Its candidate query is read from the function's own
 * body in pg_proc (so the benchmark measures what runs, not a copy), then
 * EXPLAINed with the partial index it is built for, and again with that index
 * dropped inside a transaction that is rolled back: the baseline is the same
 * query without the index, in the same run. Then the check itself: the first
 * runs catch up with every stage the loader left overdue, as many a
 * statement as the service marks (the longest statement is how long a request
 * stays locked by it), and later runs find little or nothing new. The gauge's count is EXPLAINed too.
 */
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql as drizzleSql } from 'drizzle-orm';
import pg from 'pg';
import { contentRequests } from '../../src/db/tables.js';
import { isStalled, MARK_BATCH } from '../../src/services/stalls.js';
import { round, roundSummary, summarize, type Summary } from '../lib/stats.js';
import { planFindings, summarizePlan, type PlanSummary } from './queries.js';

const FACTOR = 2;
const STEADY_RUNS = 20;
const INDEX = 'idx_request_stages_running_unstalled';

export type StallFigure = {
  candidates: { sql: string; withIndex: PlanSummary; withoutIndex: PlanSummary; afterCatchUp: PlanSummary; findings: string[] };
  gauge: { sql: string; plan: PlanSummary; findings: string[] };
  /** The first runs on the loaded data: every stage overdue by then. */
  catchUp: { stagesMarked: number; statements: number; statementMs: Summary; totalMs: number };
  /** Runs with nothing new to mark, as most checks are. */
  steady: { statementMs: Summary; marked: number };
  runningStages: number;
  /** Stages marked per statement (the service's MARK_BATCH). */
  batch: number;
};

/** The FOR … IN <select> LOOP of the function's body, with its two arguments as parameters. */
async function candidateQuery(sql: pg.Client): Promise<string> {
  const { rows } = await sql.query<{ body: string }>(`select prosrc as body from pg_proc where proname = 'mark_stalled_stages'`);
  const match = /FOR candidate IN\s+([\s\S]+?)\s+LOOP/.exec(rows[0]?.body ?? '');
  if (!match) throw new Error('mark_stalled_stages() has no FOR candidate IN … LOOP: the stalls phase needs updating');
  return match[1]!.replace(/\bstall_factor\b/g, '$1::numeric').replace(/\bbatch_limit\b/g, '$2::integer');
}

async function explain(sql: pg.Client, text: string, params: unknown[]): Promise<PlanSummary> {
  const { rows } = await sql.query<{ 'QUERY PLAN': unknown }>(`explain (analyze, buffers, format json) ${text}`, params);
  return summarizePlan(rows[0]!['QUERY PLAN']);
}

async function markOnce(sql: pg.Client): Promise<{ marked: number; ms: number }> {
  const t0 = performance.now();
  const { rows } = await sql.query<{ marked: number }>('select mark_stalled_stages($1, $2) as marked', [FACTOR, MARK_BATCH]);
  return { marked: rows[0]!.marked, ms: performance.now() - t0 };
}

export async function measureStalls(sql: pg.Client, log: (line: string) => void): Promise<StallFigure> {
  const running = await sql.query<{ n: number }>(`select count(*)::int as n from request_stages where status = 'in_progress'`);
  const candidates = await candidateQuery(sql);
  const withIndex = await explain(sql, candidates, [FACTOR, MARK_BATCH]);
  await sql.query('begin');
  let withoutIndex: PlanSummary;
  try {
    await sql.query(`drop index ${INDEX}`);
    withoutIndex = await explain(sql, candidates, [FACTOR, MARK_BATCH]);
  } finally {
    await sql.query('rollback');
  }
  log(`  candidates: ${withIndex.executionMs} ms (${withIndex.nodes.join(' › ')}); without the index ${withoutIndex.executionMs} ms`);

  const count = drizzle({ client: sql })
    .select({ count: drizzleSql<number>`count(*)::int` })
    .from(contentRequests)
    .where(isStalled)
    .toSQL();
  const gaugePlan = await explain(sql, count.sql, count.params);

  const catchUpMs: number[] = [];
  let marked = 0;
  const started = performance.now();
  for (;;) {
    const run = await markOnce(sql);
    catchUpMs.push(run.ms);
    marked += run.marked;
    if (run.marked < MARK_BATCH) break;
  }
  const totalMs = performance.now() - started;
  log(`  catch-up: ${marked} stages marked in ${catchUpMs.length} statements, ${round(totalMs)} ms`);

  const afterCatchUp = await explain(sql, candidates, [FACTOR, MARK_BATCH]);
  const steadyMs: number[] = [];
  let steadyMarked = 0;
  for (let i = 0; i < STEADY_RUNS; i++) {
    const run = await markOnce(sql);
    steadyMs.push(run.ms);
    steadyMarked += run.marked;
  }
  return {
    candidates: { sql: candidates.replace(/\s+/g, ' '), withIndex, withoutIndex, afterCatchUp, findings: planFindings(withIndex) },
    gauge: { sql: count.sql, plan: gaugePlan, findings: planFindings(gaugePlan) },
    catchUp: { stagesMarked: marked, statements: catchUpMs.length, statementMs: roundSummary(summarize(catchUpMs)), totalMs: round(totalMs) },
    steady: { statementMs: roundSummary(summarize(steadyMs)), marked: steadyMarked },
    runningStages: running.rows[0]!.n,
    batch: MARK_BATCH,
  };
}
