/** The printed form of a run: a header naming the machine, then one table per suite. */
import { formatBytes, formatCount, formatMs, formatPercent, formatRatio, renderTable } from './lib/table.js';
import type { Summary } from './lib/stats.js';
import type { BenchResults } from './run.js';
import type { RunSummary } from './summary.js';
import type { CpuShares } from './lib/cpu.js';
import type { LiveResults, Ramp } from './live/suite.js';
import type { Path } from './live/driver.js';
import { renderScale } from './scale/report.js';
import { renderEta } from './eta/report.js';
import { renderRetention } from './retention/suite.js';

const PATH_NAMES: Record<Path, string> = {
  raw: 'raw LISTEN',
  progress: 'contentRequestProgress',
  feed: 'contentRequestUpdates (admin, all)',
};

const triple = (s: Summary) => `${formatMs(s.p50)} / ${formatMs(s.p95)} / ${formatMs(s.p99)}`;
/** Cores used, as % of one core: service / clients+writer / PostgreSQL / anything else. */
const cpuCell = (c: CpuShares) =>
  [c.server, c.driver, c.postgres, c.other].map((v) => (Number.isFinite(v) ? Math.round(v * 100) : '–')).join(' / ');
/** Other processes busier than this (cores) during a phase make its figures suspect. */
const OTHER_LOAD_WARNING = 0.25;

export function renderReport(results: BenchResults): string {
  const m = results.machine;
  const lines = [
    `Benchmark (${results.mode} mode), ${results.startedAt}`,
    `machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}; Node ${m.node} (NODE_ENV ${m.nodeEnv ?? 'unset'}); PostgreSQL ${m.postgres} ` +
      `(${Object.entries(m.postgresSettings).map(([k, v]) => `${k}=${v}`).join(', ')})`,
    `machine busy with nothing of the benchmark running: ${formatPercent(results.backgroundLoad.before)} before, ` +
      `${formatPercent(results.backgroundLoad.after)} after (load average ${m.loadAverage} at the start)`,
    `machine speed: a fixed JavaScript workload ${results.speed.cpuWorkMs} ms, a loopback TCP round trip ${results.speed.loopbackRoundTripUs} µs; ` +
      `CPU time stolen by the hypervisor during the run: ${results.speed.stealPercent === null ? 'unknown' : `${results.speed.stealPercent}%`} (bench/README.md, "Machine speed")`,
  ];
  if (results.live) lines.push('', ...renderLive(results.live));
  if (results.scale) lines.push('', ...renderScale(results.scale));
  if (results.eta) lines.push('', ...renderEta(results.eta));
  if (results.retention) lines.push('', ...renderRetention(results.retention));
  lines.push('', renderSummary(results.summary));
  return lines.join('\n');
}

/** The summary as one line per key, as written to the results file ("–": not measured in this run). */
function renderSummary(summary: RunSummary): string {
  return [
    'summary (the results file\'s `summary` object):',
    ...Object.entries(summary).map(([key, value]) => `  ${key.padEnd(26)} ${value === null ? '–' : String(value)}`),
  ].join('\n');
}

function renderLive(live: LiveResults): string[] {
  const rows: string[][] = [];
  for (const figure of live.latency) {
    const raw = figure.raw.paths.raw!;
    for (const path of ['progress', 'feed'] as const) {
      const service = figure.service.paths[path]!;
      const ratio = figure.service.ratio[path]!;
      rows.push([
        `commit→client @${formatCount(figure.rate)}/s, ${PATH_NAMES[path]}`,
        triple(service.latency),
        triple(raw.latency),
        `${formatRatio(ratio.p50)} / ${formatRatio(ratio.p95)} / ${formatRatio(ratio.p99)}`,
        `${formatCount(service.latency.n)} / ${formatCount(raw.latency.n)}`,
      ]);
    }
    rows.push([
      `  of which commit→server hub @${formatCount(figure.rate)}/s`,
      triple(figure.service.commitToHub),
      '',
      '',
      formatCount(figure.service.commitToHub.n),
    ]);
    rows.push([
      `  writer's commit round trip @${formatCount(figure.rate)}/s`,
      triple(figure.service.commitMs),
      triple(figure.raw.commitMs),
      '',
      `achieved ${formatCount(figure.service.achievedRate)} / ${formatCount(figure.raw.achievedRate)} changes/s`,
    ]);
    rows.push([
      `  cpu, % of a core: service / clients / postgres / other`,
      cpuCell(figure.service.cpu),
      cpuCell(figure.raw.cpu),
      '',
      '',
    ]);
  }
  const { raw, service, ratio } = live.throughput;
  rows.push([
    'most changes/s one process delivers, keeping up',
    formatCount(service.sustainedRate),
    formatCount(raw.sustainedRate),
    formatRatio(ratio),
    `each change to its progress subscriber and the admin feed`,
  ]);
  const heap = live.heap;
  rows.push([
    `server heap per idle subscription (${formatCount(heap.subscriptions)} on ${formatCount(heap.sockets)} sockets)`,
    formatBytes(heap.perSubscriptionBytes),
    '',
    '',
    `one topic each; ${formatBytes(heap.perSharedTopicSubscriptionBytes)} when all follow one request`,
  ]);
  rows.push([
    '  server heap per connected WebSocket (no subscription)',
    formatBytes(heap.perSocketBytes),
    '',
    '',
    `retained per subscription after closing: ${formatBytes(heap.retainedAfterClosePerSubscriptionBytes)}`,
  ]);
  rows.push([
    '  subscriptions opened a second (snapshot received)',
    formatCount(heap.subscribeRate),
    '',
    '',
    `hub subscribers open/closed: ${formatCount(heap.hubSubscribersOpen)}/${formatCount(heap.hubSubscribersAfterClose)}; ` +
      `request_events: ${formatCount(heap.requestEvents)} rows`,
  ]);
  rows.push([
    '  the same after the ramps',
    formatCount(heap.lateSubscribe.subscribeRate),
    '',
    '',
    `${formatCount(heap.lateSubscribe.subscriptions)} subscriptions; request_events: ${formatCount(heap.lateSubscribe.requestEvents)} rows`,
  ]);
  const fan = live.fanout;
  rows.push([
    `1 change → ${formatCount(fan.subscribers)} subscribers: the last one's (p50 / max of rounds)`,
    `${formatMs(fan.last.p50)} / ${formatMs(fan.last.max)}`,
    `${formatMs(live.latency[0]!.raw.paths.raw!.latency.p50)} (p50 @${formatCount(live.latency[0]!.rate)}/s)`,
    formatRatio(fan.ratioToRawP50),
    `${fan.rounds} rounds; p50s: hub ${formatMs(fan.commitToHub.p50)}, first ${formatMs(fan.first.p50)}, ` +
      `median sub ${formatMs(fan.median.p50)}; server sent first/last at ${formatMs(fan.serverFirstSend.p50)}/${formatMs(fan.serverLastSend.p50)} ms`,
  ]);
  rows.push([
    `  cpu during fan-out, % of a core: service / clients / postgres / other`,
    cpuCell(fan.cpu),
    '',
    '',
    '',
  ]);

  const out = [
    `Live path: latency in ms (p50 / p95 / p99) from just before a change's transaction was sent to its arrival; ` +
      `a change is one progress UPDATE (trigger → request_events row → NOTIFY at commit)`,
    renderTable(
      [
        { title: 'figure' },
        { title: 'service (graphql-ws)', align: 'right' },
        { title: 'raw LISTEN/NOTIFY', align: 'right' },
        { title: 'ratio', align: 'right' },
        { title: 'samples (service / raw), notes' },
      ],
      rows,
    ),
    '',
    `Ramp (${formatCount(live.plan.ramp.stepMs)} ms a step; the writer groups what is due into one transaction when behind):`,
    renderRamp('raw', live.throughput.raw, ['raw']),
    renderRamp('service', live.throughput.service, ['progress', 'feed']),
    `raw: ${live.throughput.raw.limit}`,
    `service: ${live.throughput.service.limit}`,
    '',
    ...warnings(live),
    integrityLine(live),
    `elapsed ${formatCount(live.elapsedMs / 1000)} s; database ${live.database} (dropped)`,
  ];
  return out;
}

function renderRamp(side: string, ramp: Ramp, paths: Path[]): string {
  return renderTable(
    [
      { title: side },
      { title: 'target/s', align: 'right' },
      { title: 'achieved/s', align: 'right' },
      { title: 'chg/tx', align: 'right' },
      { title: 'commit p50', align: 'right' },
      ...paths.map((p) => ({ title: `${p} p50/p99`, align: 'right' as const })),
      ...paths.map((p) => ({ title: `${p} lag 1st→3rd`, align: 'right' as const })),
      { title: 'cpu % svc/cli/pg/other', align: 'right' },
      { title: 'µs/chg svc/cli/pg', align: 'right' },
      { title: 'loop p99', align: 'right' },
      { title: 'verdict' },
    ],
    ramp.steps.map((step, i) => [
      String(i + 1),
      formatCount(step.rate),
      formatCount(step.achievedRate),
      String(step.meanChangesPerTransaction),
      formatMs(step.commitP50),
      ...paths.map((p) => `${formatMs(step.paths[p]!.p50)} / ${formatMs(step.paths[p]!.p99)}`),
      ...paths.map((p) => `${formatMs(step.paths[p]!.firstThirdP50)} → ${formatMs(step.paths[p]!.lastThirdP50)}`),
      cpuCell(step.cpu),
      `${step.cpuPerChangeUs.server} / ${step.cpuPerChangeUs.driver} / ${step.cpuPerChangeUs.postgres}`,
      formatMs(step.serverEventLoopDelayP99),
      step.keptUp ? 'kept up' : 'behind',
    ]),
  );
}

function warnings(live: LiveResults): string[] {
  const out: string[] = [];
  const phases: [string, CpuShares][] = [];
  for (const figure of live.latency) {
    phases.push([`raw @${formatCount(figure.rate)}/s`, figure.raw.cpu], [`service @${formatCount(figure.rate)}/s`, figure.service.cpu]);
    for (const [side, result] of [['raw', figure.raw], ['service', figure.service]] as const) {
      if (result.achievedRate < 0.95 * figure.rate) {
        out.push(
          `note: ${side} @${formatCount(figure.rate)}/s: the writer reached only ${formatCount(result.achievedRate)} changes/s ` +
            `(one transaction each, ${live.plan.writerConnections} connections; commit p50 ${formatMs(result.commitMs.p50)} ms): ` +
            `its latency figures are at that rate`,
        );
      }
    }
  }
  for (const step of live.throughput.raw.steps) phases.push([`raw ramp ${formatCount(step.rate)}/s`, step.cpu]);
  for (const step of live.throughput.service.steps) phases.push([`service ramp ${formatCount(step.rate)}/s`, step.cpu]);
  phases.push(['fan-out', live.fanout.cpu]);
  const busy = phases.filter(([, cpu]) => cpu.other > OTHER_LOAD_WARNING);
  if (busy.length) {
    out.push(
      `warning: other processes on the machine were busy during ${busy.length} phase(s) ` +
        `(${busy.map(([name, cpu]) => `${name}: ${Math.round(cpu.other * 100)}% of a core`).join(', ')}); ` +
        `those figures understate what a quiet machine does`,
    );
  }
  return out;
}

function integrityLine(live: LiveResults): string {
  let missing = 0;
  let duplicates = 0;
  for (const figure of live.latency) {
    for (const result of [figure.raw, figure.service]) {
      for (const path of Object.values(result.paths)) {
        missing += path.missing;
        duplicates += path.duplicates;
      }
    }
  }
  const i = live.integrity;
  return (
    `integrity (fixed-rate phases): ${missing} missing, ${duplicates} duplicates; ` +
    `all phases: ${i.progressGaps} progress sequence gaps, ${i.outOfOrder} out-of-order cursors/positions, ` +
    `${i.ended} subscriptions ended by the server${i.errors.length ? ` (${i.errors.join(' | ')})` : ''}`
  );
}
