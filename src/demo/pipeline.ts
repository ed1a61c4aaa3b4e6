/**
 * The demo pipeline: a pretend content-generation worker that submits
 * requests for the demo students and drives them through the stages, with
 * progress, failures and retries, so a dashboard has something to show.
 *
 * It is a client of the service and nothing more: every step is a GraphQL
 * operation over HTTP, exactly what a real worker sends, and it imports
 * nothing from the service's own layers. The stage list comes from the API.
 */

export type DemoPipelineOptions = {
  /** The service's base URL, e.g. http://127.0.0.1:4000 */
  url: string;
  /** A worker's bearer token (a worker may submit for any student and report every stage). */
  token: string;
  /** Whom the requests are for. */
  studentIds: readonly string[];
  /** Requests in flight at once. */
  concurrency?: number;
  /** Divides every pause: 10 runs ten times as fast. */
  speed?: number;
  /** Each slot drives one request, then the run ends. */
  once?: boolean;
  /** Stops the run: each slot finishes the report it is sending and sends no more. */
  signal?: AbortSignal;
  /** Each step (`info`), and a request that broke off on an error (`warn`). */
  log?: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
};

/** How a request the demo drove ended; `stopped` when the run was stopped first. */
export type DemoOutcome = { id: string; status: 'COMPLETED' | 'FAILED' | 'stopped'; retried: boolean };

/** What becomes of a request, in turn: most complete, some fail and are retried, some stay failed. */
type Plan = 'complete' | 'fail-then-retry' | 'fail';
const PLANS: readonly Plan[] = ['complete', 'fail-then-retry', 'complete', 'fail'];

const TOPICS = [
  { topic: 'Photosynthesis', studentQuery: 'How do plants turn light into sugar?', gradeLevel: '7' },
  { topic: 'The water cycle', studentQuery: 'Where does rain come from and where does it go?', gradeLevel: '5' },
  { topic: 'Fractions', studentQuery: 'Why do we need a common denominator to add fractions?', gradeLevel: '4' },
  { topic: 'The French Revolution', studentQuery: 'What led to the storming of the Bastille?', gradeLevel: '10' },
  { topic: 'Plate tectonics', studentQuery: 'Why do earthquakes happen along some coasts?', gradeLevel: '8' },
  { topic: 'Pythagoras', studentQuery: 'Show me why a² + b² = c² with a picture', gradeLevel: '8' },
  { topic: 'Cell division', studentQuery: 'What is the difference between mitosis and meiosis?', gradeLevel: '9' },
  { topic: 'Supply and demand', studentQuery: 'Why do concert tickets cost more on resale sites?', gradeLevel: '11' },
  { topic: 'The Moon', studentQuery: 'Why do we always see the same side of the Moon?', gradeLevel: '6' },
  { topic: 'Haiku', studentQuery: 'How do I write a haiku about autumn?', gradeLevel: '3' },
] as const;

const FAILURES = [
  'the retrieval index timed out',
  'the script model returned an empty answer',
  'the renderer ran out of memory',
  'the upload to storage was refused (503)',
  'the moderation check flagged the draft',
] as const;

const STAGES_QUERY = '{ pipelineStages { name order } }';
const SUBMIT = `mutation ($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { request { id } } }`;
const REPORT = `mutation ($input: ReportStageInput!) { reportStage(input: $input) { status } }`;
const RETRY = `mutation ($id: ID!) { retryContentRequest(id: $id) { status } }`;

/** Resolves when every slot has stopped: after one request each with `once`, else when `signal` aborts. */
export async function runDemoPipeline(options: DemoPipelineOptions): Promise<DemoOutcome[]> {
  const { concurrency = 3, speed = 1, once = false, signal, log = () => {} } = options;
  if (!options.studentIds.length) throw new Error('the demo pipeline needs at least one student');
  const call = <T>(query: string, variables: Record<string, unknown> = {}) => graphql<T>(options.url, options.token, query, variables);
  const stages = (await call<{ pipelineStages: { name: string; order: number }[] }>(STAGES_QUERY)).pipelineStages
    .sort((a, b) => a.order - b.order)
    .map((stage) => stage.name);
  const pause = (seconds: number) => sleep((seconds * 1000) / speed, signal);
  const outcomes: DemoOutcome[] = [];
  let started = 0;

  async function slot(index: number) {
    // Staggered, so the slots do not move in step.
    if (!once) await pause(index * (1 + Math.random()));
    while (!signal?.aborted) {
      const number = started++;
      try {
        const outcome = await driveOne(number);
        outcomes.push(outcome);
        log('info', `demo request ${outcome.status.toLowerCase()}`, { requestId: outcome.id, retried: outcome.retried });
      } catch (error) {
        if (once) throw error;
        log('warn', 'demo request broke off; starting another', { error: (error as Error).message });
        await sleep(2_000, signal); // not divided by speed: a service that is down is not asked faster
      }
      if (once) return;
      await pause(1 + Math.random() * 2);
    }
  }

  /** Submits one request and drives it as far as its plan says, stopping between reports if asked. */
  async function driveOne(number: number): Promise<DemoOutcome> {
    const plan = PLANS[number % PLANS.length]!;
    const subject = pick(TOPICS);
    const studentId = options.studentIds[number % options.studentIds.length]!;
    const input = { ...subject, studentId, correlationId: `demo-${crypto.randomUUID()}` };
    const submitted = await call<{ submitContentRequest: { request: { id: string } } }>(SUBMIT, { input });
    const id = submitted.submitContentRequest.request.id;
    log('info', 'demo request submitted', { requestId: id, topic: subject.topic, studentId, plan });
    const report = async (stage: string, status: string, extra: Record<string, unknown> = {}) =>
      (await call<{ reportStage: { status: string } }>(REPORT, { input: { requestId: id, stage, status, ...extra } })).reportStage.status;

    const failAt = plan === 'complete' ? -1 : Math.floor(Math.random() * stages.length);
    let retried = false;
    let status = 'PENDING';
    for (let i = 0; i < stages.length; i++) {
      const stage = stages[i]!;
      await pause(0.5 + Math.random());
      if (signal?.aborted) return { id, status: 'stopped', retried };
      await report(stage, 'IN_PROGRESS');
      const steps = 2 + Math.floor(Math.random() * 3);
      const failAtStep = i === failAt && !retried ? Math.floor(Math.random() * steps) : -1;
      for (let step = 1; step <= steps; step++) {
        await pause(0.5 + Math.random() * 2);
        if (signal?.aborted) return { id, status: 'stopped', retried };
        if (step - 1 === failAtStep) break;
        await report(stage, 'IN_PROGRESS', { progress: Math.round((100 * step) / (steps + 1)) });
      }
      if (failAtStep < 0) {
        status = await report(stage, 'COMPLETED');
        continue;
      }
      status = await report(stage, 'FAILED', { errorMessage: pick(FAILURES) });
      if (plan === 'fail' || signal?.aborted) break;
      await pause(1 + Math.random() * 2);
      if (signal?.aborted) break;
      await call<{ retryContentRequest: unknown }>(RETRY, { id });
      retried = true;
      i--; // the same stage again, from the start
    }
    return status === 'COMPLETED' || status === 'FAILED' ? { id, status, retried } : { id, status: 'stopped', retried };
  }

  await Promise.all(Array.from({ length: concurrency }, (_, index) => slot(index)));
  return outcomes;
}

/** One GraphQL operation over HTTP that must succeed: its data. */
async function graphql<T>(url: string, token: string, query: string, variables: Record<string, unknown>): Promise<T> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T | null; errors?: { message: string }[] };
  if (body.errors?.length || !body.data) {
    throw new Error(`the service refused the demo's request (${response.status}): ${body.errors?.map((e) => e.message).join('; ')}`);
  }
  return body.data;
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

/** Waits `ms`, or less if `signal` aborts (resolving, not throwing: stopping is not an error). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
