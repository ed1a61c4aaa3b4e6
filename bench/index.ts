/**
 * `npm run bench [-- --quick] [-- --tiny] [-- --only live] [-- --no-write]`
 *
 * Runs on the PostgreSQL server named by DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres) in a database it creates and
 * drops, prints a table, and writes bench/results/<ISO time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { backgroundLoad } from './lib/cpu.js';
import { DEFAULT_SERVER_URL, pendingDrops } from './lib/database.js';
import { renderReport } from './report.js';
import { runBenchmark, SUITES, type SuiteName } from './run.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    'no-write': { type: 'boolean', default: false },
    'wait-quiet': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`npm run bench -- [--quick | --tiny] [--only ${SUITES.join('|')}] [--no-write]
  --quick     shorter phases, 1,000 subscriptions, 100,000 requests instead of 1,000,000 (under two minutes)
  --tiny      a few seconds, tiny sizes (what the smoke test runs)
  --only      run only these suites
  --no-write  print, but write no bench/results file
  --wait-quiet <s>  first wait up to <s> seconds for a second in which the machine is under 20% busy
DATABASE_URL  the PostgreSQL server to use (default ${DEFAULT_SERVER_URL})`);
  process.exit(0);
}

const only = (values.only ?? []) as string[];
for (const name of only) {
  if (!(SUITES as readonly string[]).includes(name)) {
    console.error(`unknown suite ${name}; suites: ${SUITES.join(', ')}`);
    process.exit(2);
  }
}

if (!(globalThis as { gc?: unknown }).gc) {
  console.error('note: run with node --expose-gc (npm run bench does) for the heap figures; falling back to a runtime flag');
}

const serverUrl = process.env.DATABASE_URL || DEFAULT_SERVER_URL;
const mode = values.tiny ? 'tiny' : values.quick ? 'quick' : 'full';
const started = Date.now();
const log = (line: string) => console.error(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}`);

// Ctrl-C or a kill (a CI timeout): drop the run's databases, then leave.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`${signal}: dropping the benchmark database (signal again to leave it behind)`);
    void Promise.allSettled([...pendingDrops].map((drop) => drop())).then(() => process.exit(130));
  });
}

try {
  if (values['wait-quiet']) {
    const deadline = Date.now() + Number(values['wait-quiet']) * 1000;
    for (;;) {
      const busy = await backgroundLoad(1_000);
      if (busy < 0.2) break;
      if (Date.now() > deadline) {
        log(`the machine is still ${Math.round(busy * 100)}% busy; starting anyway`);
        break;
      }
      log(`waiting for a quiet machine (${Math.round(busy * 100)}% busy)`);
    }
  }
  const results = await runBenchmark({
    serverUrl,
    mode,
    suites: only.length ? (only as SuiteName[]) : SUITES,
    log,
  });
  console.log(renderReport(results));
  if (!values['no-write']) {
    const folder = fileURLToPath(new URL('./results/', import.meta.url));
    await mkdir(folder, { recursive: true });
    // An ISO 8601 time without colons (file names on every system).
    const file = `${folder}${results.startedAt.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}.json`;
    await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`\nwritten: ${file}`);
  }
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
// Nothing of ours should be left running; leave promptly if a library keeps a handle.
setTimeout(() => process.exit(), 1_000).unref();
