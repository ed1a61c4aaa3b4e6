/**
 * `npm run demo [-- --concurrency 3 --speed 1 --once --url http://127.0.0.1:4000]`:
 * the demo pipeline against a running service, until Ctrl-C.
 *
 * As whom: TOKEN from the environment (a worker's or an admin's), or else,
 * against the embedded mode, the demo worker with a token signed here from
 * the development secret the service keeps in its data folder.
 */
import { parseArgs } from 'node:util';
import { signDemoUserToken } from '../src/app.js';
import { ConfigError, loadConfig, type Config } from '../src/config.js';
import { runDemoPipeline } from '../src/demo/pipeline.js';
import { developmentSecret } from '../src/http/auth.js';
import { DEMO_USERS } from '../src/services/demo.js';

const USAGE = `usage: npm run demo -- [--concurrency N] [--speed F] [--once] [--url URL] [--students id,id]
  --concurrency  requests in flight at once (default 3)
  --speed        how much faster than the default pace (default 1; 10 is ten times as fast)
  --once         drive one request per slot, then exit
  --url          the service (default http://127.0.0.1:$PORT, PORT 4000 unless set)
  --students     whom to submit for (default: the demo students)
TOKEN in the environment: the worker's bearer token; unset: the embedded mode's demo worker.`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(64); // EX_USAGE
}

function positive(name: string, value: string, integer: boolean): number {
  const number = Number(value);
  if (!(number > 0) || (integer && !Number.isInteger(number))) fail(`--${name} must be a positive ${integer ? 'integer' : 'number'}, not ${value}`);
  return number;
}

async function demoWorkerToken(config: Config): Promise<string> {
  if (config.database.kind !== 'pglite' || config.auth.verify.kind !== 'development') {
    fail('set TOKEN to a worker token: only the embedded development mode lets this script sign one');
  }
  let secret: Uint8Array;
  try {
    secret = await developmentSecret(config.database.dataDir, { create: false });
  } catch (error) {
    fail(`set TOKEN to the worker token the service printed: ${(error as Error).message}`);
  }
  return signDemoUserToken(secret, DEMO_USERS.find((user) => user.role === 'worker')!, config.auth, 86_400);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      concurrency: { type: 'string', default: '3' },
      speed: { type: 'string', default: '1' },
      once: { type: 'boolean', default: false },
      url: { type: 'string' },
      students: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  }).values;
} catch (error) {
  fail((error as Error).message);
}
if (parsed.help) {
  console.log(USAGE);
  process.exit(0);
}
const concurrency = positive('concurrency', parsed.concurrency, true);
const speed = positive('speed', parsed.speed, false);

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) fail(error.message);
  throw error;
}
const url = (parsed.url ?? `http://127.0.0.1:${config.http.port}`).replace(/\/+$/, '');
const token = process.env.TOKEN || (await demoWorkerToken(config));
const studentIds = parsed.students
  ? parsed.students.split(',').map((id) => id.trim()).filter(Boolean)
  : DEMO_USERS.filter((user) => user.role === 'student').map((user) => user.userId);

// Ctrl-C: every slot finishes the report it is sending, then stops; a second Ctrl-C stops at once.
const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stop.signal.aborted) process.exit(130);
    console.log('stopping: finishing the reports in flight (Ctrl-C again to quit now)');
    stop.abort();
  });
}

console.log(`demo pipeline: ${url}, ${concurrency} at once, speed ${speed}${parsed.once ? ', one batch' : ' (Ctrl-C stops it)'}`);
try {
  const outcomes = await runDemoPipeline({
    url,
    token,
    studentIds,
    concurrency,
    speed,
    once: parsed.once,
    signal: stop.signal,
    log: (level, message, fields) => (level === 'warn' ? console.warn : console.log)(`${message} ${JSON.stringify(fields)}`),
  });
  const count = (status: string) => outcomes.filter((outcome) => outcome.status === status).length;
  console.log(`done: ${count('COMPLETED')} completed, ${count('FAILED')} failed, ${outcomes.filter((o) => o.retried).length} retried`);
} catch (error) {
  console.error(`the demo pipeline stopped: ${(error as Error).message}`);
  process.exit(1);
}
