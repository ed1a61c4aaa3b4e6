/**
 * The at-scale suites' client process: HTTP load (autocannon) and sequential
 * GraphQL timings, kept out of the measured server's process and event loop.
 * Driven by messages from bench/scale/suite.ts (bench/lib/rpc.ts).
 */
import http from 'node:http';
import autocannon from 'autocannon';
import type { CpuShares } from '../lib/cpu.js';
import { serveRpc } from '../lib/rpc.js';

export type GraphQLCase = { query: string; variables: Record<string, unknown>; token?: string };

export type LatencyParams = {
  url: string;
  cases: GraphQLCase[];
  runs: number;
  /** Untimed requests after the first ones: this many, or as many as fit in warmupMs (when given). */
  warmupRuns: number;
  warmupMs?: number;
  budgetMs: number;
  /** node:http (the default) or fetch: fetch (undici) adds about 0.7-1 ms of its own per request (bench/README.md, issue 13). */
  client?: 'http' | 'fetch';
};
export type LatencyResult = {
  ms: number[];
  /** Each case once, before the warm-up: for most, that viewer's first request in the process (its token checked, its user provisioned). */
  firstMs: number[];
  errors: number;
  firstError?: string;
};

export type CannonParams = {
  url: string;
  connections: number;
  durationMs: number;
  warmupMs: number;
  query: string;
  /** One is picked at random for each request; with inOrder, each in turn (cycling, the warm-up's turn carried on). */
  variants: { variables: Record<string, any>; token?: string }[];
  inOrder?: boolean;
  /** Sets variables.input[field] to a new value on every request (an idempotency key). */
  uniqueInputField?: string;
};

export type CannonResult = {
  /** Every response, failed ones included. */
  requests: number;
  /** 2xx responses without GraphQL errors: the only ones requestsPerSecond counts. */
  succeeded: number;
  requestsPerSecond: number;
  /** Everything else: non-2xx, GraphQL errors, socket errors (timeouts among them). */
  failed: number;
  /** Successful responses during the warm-up before it (its changes are in the database too). */
  warmupSucceeded: number;
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  non2xx: number;
  /** 200 responses that carried GraphQL errors. */
  graphqlErrors: number;
  socketErrors: number;
  timeouts: number;
  firstError?: string;
  durationMs: number;
};

/** A load run, with who used the CPU meanwhile (measured in the parent). */
export type Throughput = CannonResult & { cpu: CpuShares };

/** A GraphQL response that answered: 2xx and no `errors` (a body can only say "errors" unescaped as a key, so most skip the parse). */
function succeeded(status: number, body: string): boolean {
  if (status < 200 || status >= 300) return false;
  if (!body.includes('"errors"')) return true;
  try {
    return (JSON.parse(body) as { errors?: unknown }).errors === undefined;
  } catch {
    return false;
  }
}

async function fetchPost(url: string, body: string, token?: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body,
  });
  return { status: response.status, text: await response.text() };
}

// One kept-alive connection, as the SQL side has: requests go one at a time.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** A POST over node:http: what the SQL side's pg client is to PostgreSQL, a thin client on a kept connection. */
function httpPost(url: string, body: string, token?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'content-length': Buffer.byteLength(body),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
    }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

async function latencies(params: LatencyParams): Promise<LatencyResult> {
  const send = params.client === 'fetch' ? fetchPost : httpPost;
  const bodies = params.cases.map((c) => JSON.stringify({ query: c.query, variables: c.variables }));
  let errors = 0;
  let firstError: string | undefined;
  const timed = async (index: number): Promise<number> => {
    const started = performance.now();
    const { status, text } = await send(params.url, bodies[index]!, params.cases[index]!.token);
    const elapsed = performance.now() - started;
    if (!succeeded(status, text)) {
      errors++;
      firstError ??= `${status} ${text.slice(0, 300)}`;
    }
    return elapsed;
  };
  // Every case once first: a viewer's first request costs a token check and a provisioning statement
  // once per process, which a steady client never pays again; kept apart from the steady figures.
  const firstMs: number[] = [];
  for (let index = 0; index < bodies.length; index++) firstMs.push(await timed(index));
  const warmupEnd = performance.now() + (params.warmupMs ?? Number.POSITIVE_INFINITY);
  let i = 0;
  for (; i < params.warmupRuns && performance.now() < warmupEnd; i++) await timed(i % bodies.length);
  const ms: number[] = [];
  const deadline = performance.now() + params.budgetMs;
  for (let run = 0; run < params.runs; run++, i++) {
    ms.push(await timed(i % bodies.length));
    if (ms.length >= 20 && performance.now() > deadline) break;
  }
  return { ms, firstMs, errors, ...(firstError ? { firstError } : {}) };
}

let uniqueCounter = 0;
let turn = 0;

async function cannon(params: CannonParams, durationMs: number): Promise<Omit<CannonResult, 'warmupSucceeded'>> {
  let successes = 0;
  let graphqlErrors = 0;
  let firstError: string | undefined;
  const variants = params.variants.map((v) => ({
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      ...(v.token ? { authorization: `Bearer ${v.token}` } : {}),
    },
    variables: v.variables,
  }));
  const prefix = `load-${process.pid}-${Date.now()}-`;
  const result = await autocannon({
    url: params.url,
    connections: params.connections,
    duration: durationMs / 1000,
    timeout: 30,
    requests: [
      {
        method: 'POST',
        setupRequest(request) {
          const variant = variants[params.inOrder ? turn++ % variants.length : Math.floor(Math.random() * variants.length)]!;
          let variables = variant.variables;
          if (params.uniqueInputField) {
            variables = { ...variables, input: { ...variables.input, [params.uniqueInputField]: `${prefix}${uniqueCounter++}` } };
          }
          return { ...request, headers: variant.headers, body: JSON.stringify({ query: params.query, variables }) };
        },
        onResponse(status, body) {
          if (succeeded(status, body)) successes++;
          else if (status === 200) {
            graphqlErrors++;
            firstError ??= body.slice(0, 300);
          } else firstError ??= `${status} ${body.slice(0, 300)}`;
        },
      },
    ],
  });
  const seconds = result.duration || durationMs / 1000;
  const total = result.requests.total;
  return {
    requests: total,
    succeeded: successes,
    requestsPerSecond: successes / seconds,
    // autocannon's errors include its timeouts.
    failed: total - successes + result.errors,
    latency: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
      mean: result.latency.mean,
    },
    non2xx: result.non2xx,
    graphqlErrors,
    socketErrors: result.errors,
    timeouts: result.timeouts,
    ...(firstError ? { firstError } : {}),
    durationMs: Math.round(seconds * 1000),
  };
}

serveRpc({
  latencies: (params: LatencyParams) => latencies(params),
  async load(params: CannonParams): Promise<CannonResult> {
    turn = 0;
    const warmup = params.warmupMs > 0 ? await cannon(params, params.warmupMs) : undefined;
    const result = { ...(await cannon(params, params.durationMs)), warmupSucceeded: warmup?.succeeded ?? 0 };
    // Loud, for every figure built on this: the rate counts only the successes.
    if (result.failed > 0) {
      console.error(`!! load on ${params.url}: ${result.failed} of ${result.requests + result.socketErrors} requests FAILED; requests/s counts only the ${result.succeeded} that succeeded. First: ${result.firstError ?? '(a socket error or timeout)'}`);
    }
    return result;
  },
});
