/** The printed form of the at-scale suites: data, query patterns, the peer, the write path. */
import { formatCount, formatMs, formatRatio, renderTable } from '../lib/table.js';
import type { CpuShares } from '../lib/cpu.js';
import type { ScaleResults, Throughput } from './suite.js';
import type { PeerPlan } from './peer.js';

const cpuCell = (c: CpuShares) =>
  [c.server, c.driver, c.postgres, c.other].map((v) => (Number.isFinite(v) ? Math.round(v * 100) : '–')).join(' / ');
const pair = (a: number, b: number) => `${formatMs(a)} / ${formatMs(b)}`;

export function renderScale(scale: ScaleResults): string[] {
  const out: string[] = [];
  const { data, plan } = scale;
  const scaled = plan.mode === 'full' ? '' : ` — ${plan.mode} mode: scaled down from 1,000,000`;
  out.push(
    `Data at scale: ${formatCount(data.requests)} requests${scaled}; ${formatCount(data.students)} students, ` +
      `${formatCount(data.organizations)} organizations (INSERT … SELECT generate_series, triggers off, secondary indexes re-created after)`,
    renderTable(
      [{ title: 'table' }, { title: 'rows', align: 'right' }, { title: 'seconds', align: 'right' }, { title: 'rows/s', align: 'right' }],
      [
        ...data.tables.map((t) => [t.table, formatCount(t.rows), (t.ms / 1000).toFixed(1), formatCount(t.rowsPerSecond)]),
        ['inserts, all tables', formatCount(data.tables.reduce((s, t) => s + t.rows, 0)), (data.tables.reduce((s, t) => s + t.ms, 0) / 1000).toFixed(1), formatCount(data.insertRowsPerSecond)],
        [`re-creating ${data.indexes.count} indexes`, '', (data.indexes.ms / 1000).toFixed(1), ''],
        ['vacuum (analyze)', '', (data.vacuumAnalyzeMs / 1000).toFixed(1), ''],
        ['total', formatCount(data.tables.reduce((s, t) => s + t.rows, 0)), (data.totalMs / 1000).toFixed(1), formatCount(data.totalRowsPerSecond)],
      ],
    ),
    `status mix: ${Object.entries(data.byStatus).map(([k, v]) => `${k} ${formatCount(v)}`).join(', ')}; ` +
      `sizes: ${Object.entries(data.sizes).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  );

  if (scale.queries) {
    out.push(
      '',
      `Query patterns at ${formatCount(data.requests)} requests: ms, p50 / p99 of up to ${formatCount(plan.queries.sqlRuns)} SQL runs ` +
        `(one connection, parameters varied over the samples) and up to ${formatCount(plan.queries.graphqlRuns)} GraphQL requests ` +
        `(each side stops after ${formatCount(plan.queries.budgetMs / 1000)} s) ` +
        `(HTTP, one at a time, from the client process); the plan is EXPLAIN (ANALYZE) of the first sample`,
      renderTable(
        [
          { title: 'pattern' },
          { title: 'SQL', align: 'right' },
          { title: 'GraphQL', align: 'right' },
          { title: 'GQL/SQL', align: 'right' },
          { title: 'first request', align: 'right' },
          { title: 'seed', align: 'right' },
          { title: 'read→returned', align: 'right' },
          { title: 'plan' },
        ],
        scale.queries.figures.map((f) => [
          f.name,
          pair(f.sqlMs.p50, f.sqlMs.p99),
          f.graphqlMs ? pair(f.graphqlMs.p50, f.graphqlMs.p99) : '–',
          f.graphqlMs ? formatRatio(f.graphqlMs.p50 / f.sqlMs.p50) : '',
          f.graphqlFirstMs ? pair(f.graphqlFirstMs.p50, f.graphqlFirstMs.p99) : '–',
          f.targetMs !== undefined ? `<${f.targetMs}${f.sqlMs.p50 <= f.targetMs ? ' ok' : ' MISSED'}` : '',
          `${formatCount(f.plan.rowsRead)}→${formatCount(f.plan.rowsReturned)}`,
          f.plan.nodes.join(' › '),
        ]),
      ),
      scale.queries.findings.length
        ? ['findings (a plan that sorts, seq-scans or reads far more than it returns):', ...scale.queries.findings.map((f) => `  - ${f}`)].join('\n')
        : 'findings: none — every plan is served by an index without a sort',
    );
  }

  if (scale.peer) {
    const p = scale.peer;
    const row = (name: string, t: Throughput) => [
      name,
      formatCount(t.requestsPerSecond),
      pair(t.latency.p50, t.latency.p99),
      formatCount(t.requests),
      `${t.non2xx + t.graphqlErrors + t.socketErrors + t.timeouts}`,
      cpuCell(t.cpu),
    ];
    out.push(
      '',
      `Peer: a student's history page (20 newest) at ${p.connections} connections, pool ${p.poolSize} each; ` +
        `each peer's page for the heaviest student was checked equal to the service's (ids, order) before timing`,
      renderTable(
        [
          { title: 'server' },
          { title: 'requests/s', align: 'right' },
          { title: 'p50 / p99 ms', align: 'right' },
          { title: 'requests', align: 'right' },
          { title: 'errors', align: 'right' },
          { title: 'cpu % of a core: server / client / pg / other', align: 'right' },
        ],
        p.peers.flatMap((r) => [
            row(`the service (own process; graphql-yoga + Pothos + Drizzle), in turns with ${r.peer.name} ${r.peer.version}`, r.ours),
            row(`${r.peer.name} ${r.peer.version} (own process; graphql ${r.peer.graphqlVersion}, ${r.peer.node})`, r.theirs),
            [
              `  ratio, service over ${r.peer.name} ${r.peer.version}${r.rounds.length > 1 ? ` (median of ${r.rounds.length} turns)` : ''}`,
              formatRatio(r.ratio.requestsPerSecond),
              `${formatRatio(r.ratio.p50)} / ${formatRatio(r.ratio.p99)}`,
              '',
              '',
              '',
            ],
          ]),
      ),
      ...p.peers.map(
        (r) =>
          `turns, the service / ${r.peer.name} ${r.peer.version} requests/s (ratio): ` +
          r.rounds.map((turn) => `${formatCount(turn.ours)} / ${formatCount(turn.theirs)} (${turn.ratio.toFixed(2)})`).join(', '),
      ),
      ...p.peers.map((r) => `note, ${r.peer.name} ${r.peer.version}: ${r.peer.note}`),
      ...p.peers.map((r) => `plan, ${r.peer.name} ${r.peer.version}: ${peerPlanLine(r.plan)}`),
    );
    for (const r of p.peers) {
      if (r.ours.firstError) out.push(`service error sample (turns with ${r.peer.name} ${r.peer.version}): ${r.ours.firstError}`);
      if (r.theirs.firstError) out.push(`${r.peer.name} ${r.peer.version} error sample: ${r.theirs.firstError}`);
    }
  }

  if (scale.writes) {
    const w = scale.writes;
    out.push(
      '',
      `Write path: through the API at ${w.connections} HTTP connections (autocannon) vs the same change as one SQL statement ` +
        `from ${w.poolSize} connections (the service's pool size), triggers on and off (session_replication_role = replica, ` +
        'which also skips foreign-key checks)',
      renderTable(
        [
          { title: 'change' },
          { title: 'API /s', align: 'right' },
          { title: 'API p50 / p99 ms', align: 'right' },
          { title: 'raw, triggers on /s', align: 'right' },
          { title: 'raw, triggers off /s', align: 'right' },
          { title: 'API / on', align: 'right' },
          { title: 'API / off', align: 'right' },
          { title: 'API errors', align: 'right' },
          { title: 'cpu % svc / client / pg / other (API)', align: 'right' },
        ],
        w.figures.map((f) => [
          f.name,
          formatCount(f.api.requestsPerSecond),
          pair(f.api.latency.p50, f.api.latency.p99),
          formatCount(f.rawTriggersOn.perSecond),
          formatCount(f.rawTriggersOff.perSecond),
          formatRatio(f.ratioToTriggersOn),
          formatRatio(f.ratioToTriggersOff),
          `${f.api.non2xx + f.api.graphqlErrors + f.api.socketErrors + f.api.timeouts}`,
          cpuCell(f.api.cpu),
        ]),
      ),
      ...w.figures.map((f) => `${f.name}: ${f.description}; ${f.work}; raw p50 ${formatMs(f.rawTriggersOn.latency.p50)} ms on, ${formatMs(f.rawTriggersOff.latency.p50)} ms off` +
        (f.api.firstError ? `; API error sample: ${f.api.firstError}` : '') +
        (f.rawTriggersOn.firstError ? `; raw error sample: ${f.rawTriggersOn.firstError}` : '')),
    );
  }
  out.push(`elapsed ${formatCount(scale.elapsedMs / 1000)} s; database ${scale.database} (dropped)`);
  if (scale.stalls) {
    const st = scale.stalls;
    const planRow = (name: string, plan: (typeof st.candidates)['withIndex']) => [
      name,
      formatMs(plan.executionMs),
      `${formatCount(plan.rowsRead)}→${formatCount(plan.rowsReturned)}`,
      plan.nodes.join(' › '),
    ];
    out.push(
      '',
      `Stall check at ${formatCount(data.requests)} requests (${formatCount(st.runningStages)} running stages; factor 2, ${st.batch} a statement): ` +
        'the candidate query from mark_stalled_stages() under EXPLAIN (ANALYZE), with its partial index and, as the baseline, with it dropped',
      renderTable(
        [{ title: 'query' }, { title: 'ms', align: 'right' }, { title: 'read→returned', align: 'right' }, { title: 'plan' }],
        [
          planRow('candidates, with idx_request_stages_running_unstalled', st.candidates.withIndex),
          planRow('candidates, without it (baseline)', st.candidates.withoutIndex),
          ['without / with: the index saves', formatRatio(st.candidates.withoutIndex.executionMs / st.candidates.withIndex.executionMs), '', ''],
          planRow('candidates, once the check has caught up', st.candidates.afterCatchUp),
          planRow('tracker_stalled_requests count', st.gauge.plan),
        ],
      ),
      `the check: catching up with the loaded data marked ${formatCount(st.catchUp.stagesMarked)} stages in ` +
        `${formatCount(st.catchUp.statements)} statements (${formatMs(st.catchUp.totalMs)} ms; a statement p50 ${formatMs(st.catchUp.statementMs.p50)} ms, ` +
        `longest ${formatMs(st.catchUp.statementMs.max)} ms); then ${st.steady.statementMs.n} runs with nothing new: ` +
        `p50 ${formatMs(st.steady.statementMs.p50)} ms, p99 ${formatMs(st.steady.statementMs.p99)} ms (${st.steady.marked} marked)`,
      [...st.candidates.findings, ...st.gauge.findings].length
        ? ['stall findings:', ...st.candidates.findings.map((f) => `  - candidates: ${f}`), ...st.gauge.findings.map((f) => `  - gauge: ${f}`)].join('\n')
        : 'stall findings: none — both plans are served by partial indexes without a sort',
    );
  }

  return out;
}

function peerPlanLine(plan: PeerPlan | null): string {
  if (!plan) return 'not checked (its statement was not found whole in pg_stat_activity)';
  const first = `${plan.nodes.join(' › ')}${plan.sorts ? ' (sorts)' : ''}`;
  if (!plan.withPeerIndex) return first;
  return `${first}; timed with an index in its order (created_at DESC, NULLS FIRST) made for it in this database: ${plan.withPeerIndex.nodes.join(' › ')}`;
}
