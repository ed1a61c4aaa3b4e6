/**
 * The ETA on both databases: the expected durations without history; the
 * estimates job's medians (everyone's, and an organization's own once it has
 * enough history), idempotent; an in-flight request's ETA falling as its
 * stages complete and null once it is over; the live updates carrying it.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ORGANIZATION_MIN_SAMPLES, refreshStageEstimates } from '../../src/services/eta.js';
import { dataOf, STAGES, startTestApp, type TestApp } from '../helpers/app.js';
import { connectWs, subscribeSse, type WsConnection } from '../helpers/live.js';
import { reportStage, reportStageIn, submitRequest, type Client } from '../helpers/requests.js';

// What the seeded pipeline_stage_definitions expect (drizzle/0001).
const EXPECTED = { validation: 30, retrieval: 120, script_generation: 300, video_generation: 900, video_processing: 300 };
// The simulated history: a slow organization with enough of it, and everyone else.
const BUSY = { validation: 20, retrieval: 60, script_generation: 100, video_generation: 400, video_processing: 120 };
const OTHERS = { validation: 10, retrieval: 30, script_generation: 50, video_generation: 200, video_processing: 60 };
const sum = (durations: Record<string, number>) => Object.values(durations).reduce((a, b) => a + b, 0);
const WINDOW_DAYS = 7;

let app: TestApp;
const tokens: Record<string, string> = {};
/** Every statement the service sent, as the driver saw it. */
const statements: string[] = [];
beforeAll(async () => {
  // The job is run by hand here, so each step sees exactly the estimates it set up.
  app = await startTestApp({ env: { STAGE_ESTIMATES_REFRESH_SECONDS: '0' }, onQuery: (query) => statements.push(query) });
  tokens.busy = await app.token({ sub: 'eta-busy-student', role: 'student', organization_id: 'eta-busy' });
  tokens.quiet = await app.token({ sub: 'eta-quiet-student', role: 'student', organization_id: 'eta-quiet' });
  tokens.loner = await app.token({ sub: 'eta-loner', role: 'student' });
  tokens.admin = await app.token({ sub: 'eta-admin', role: 'admin' });
  tokens.worker = await app.token({ sub: 'eta-worker', role: 'worker' });
});
afterAll(() => app?.close());

const db = () => app.running.database.db;
const as = (who: string): Client => ({ url: app.url, token: tokens[who]! });
const report = (id: string, stage: string, status: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED', progress?: number) =>
  reportStage(as('worker'), id, stage, status, progress);

type Eta = { status: string; estimatedCompletionAt: string | null; estimatedSecondsRemaining: number | null };

async function etaOf(id: string): Promise<Eta> {
  const response = await app.graphql(
    `query ($id: ID!) { contentRequest(id: $id) { status estimatedCompletionAt estimatedSecondsRemaining } }`,
    { token: tokens.admin, variables: { id } },
  );
  return dataOf(response).contentRequest as Eta;
}

/** The ETA is `seconds` from the moment it was read, give or take the test's own clock. */
async function expectRemaining(id: string, seconds: number) {
  const before = Date.now();
  const eta = await etaOf(id);
  const after = Date.now();
  expect(eta.estimatedSecondsRemaining).toBeGreaterThanOrEqual(Math.floor(seconds - 2));
  expect(eta.estimatedSecondsRemaining).toBeLessThanOrEqual(Math.ceil(seconds + 1));
  const at = Date.parse(eta.estimatedCompletionAt!);
  expect(at).toBeGreaterThanOrEqual(before + (seconds - 2) * 1000);
  expect(at).toBeLessThanOrEqual(after + (seconds + 1) * 1000);
}

/** Completed requests whose stages took `durations` seconds each, as a worker reported them. */
async function history(who: string, count: number, durations: Record<string, number>): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { id } = await submitRequest(as(who));
    for (const stage of STAGES) {
      await reportStageIn(db(), id, stage, 'in_progress');
      await reportStageIn(db(), id, stage, 'completed');
    }
    ids.push(id);
  }
  // The durations they would have had: the timing trigger leaves a row alone while its status stays.
  for (const [stage, seconds] of Object.entries(durations)) {
    await db().execute(sql`
      update request_stages set duration_seconds = ${seconds}::numeric
       where stage_name = ${stage} and request_id in (${sql.join(ids.map((id) => sql`${id}::uuid`), sql`, `)})`);
  }
  return ids;
}

async function estimateRows() {
  const result = await db().execute<{ stage_name: string; organization_id: string | null; sample_count: number; median_seconds: string }>(
    sql`select stage_name, organization_id, sample_count, median_seconds::text from stage_duration_estimates
         order by organization_id nulls first, stage_name`,
  );
  return result.rows.map((row) => ({ ...row, median_seconds: Number(row.median_seconds) }));
}

/** Starts `stage`, then moves its start `elapsedSeconds` into the past. */
async function runningFor(id: string, stage: string, elapsedSeconds: number) {
  await report(id, stage, 'IN_PROGRESS');
  await db().execute(sql`
    update request_stages set started_at = now() - make_interval(secs => ${elapsedSeconds}::int)
     where request_id = ${id}::uuid and stage_name = ${stage}`);
}

describe('without history', () => {
  test('the ETA of a new request is the sum of the expected durations', async () => {
    expect(await estimateRows()).toEqual([]);
    const { id } = await submitRequest(as('busy'));
    await expectRemaining(id, sum(EXPECTED));
  });
});

describe('with history', () => {
  let busyHistory: string[] = [];
  beforeAll(async () => {
    busyHistory = await history('busy', ORGANIZATION_MIN_SAMPLES, BUSY);
    await history('loner', ORGANIZATION_MIN_SAMPLES + 5, OTHERS);
    await history('quiet', 3, OTHERS);
    await refreshStageEstimates(db(), WINDOW_DAYS);
  });

  test('the job writes everyone’s median per stage, and an organization’s own only with enough history', async () => {
    const everyone = ORGANIZATION_MIN_SAMPLES * 2 + 8;
    expect(await estimateRows()).toEqual([
      ...STAGES.map((stage) => ({ stage_name: stage, organization_id: null, sample_count: everyone, median_seconds: OTHERS[stage] })).sort(
        (a, b) => a.stage_name.localeCompare(b.stage_name),
      ),
      ...STAGES.map((stage) => ({ stage_name: stage, organization_id: 'eta-busy', sample_count: ORGANIZATION_MIN_SAMPLES, median_seconds: BUSY[stage] })).sort(
        (a, b) => a.stage_name.localeCompare(b.stage_name),
      ),
    ]);
  });

  test('running the job again changes nothing', async () => {
    const before = await estimateRows();
    await refreshStageEstimates(db(), WINDOW_DAYS);
    await refreshStageEstimates(db(), WINDOW_DAYS);
    expect(await estimateRows()).toEqual(before);
  });

  test('an organization with enough history gets its own estimate; one without, everyone’s', async () => {
    const busy = await submitRequest(as('busy'));
    const quiet = await submitRequest(as('quiet'));
    await expectRemaining(busy.id, sum(BUSY));
    await expectRemaining(quiet.id, sum(OTHERS));
  });

  test('the ETA falls as the stages complete, counts the running stage’s time and progress, and is null once completed', async () => {
    const { id } = await submitRequest(as('busy'));
    await expectRemaining(id, sum(BUSY));
    await report(id, 'validation', 'IN_PROGRESS');
    await report(id, 'validation', 'COMPLETED');
    await runningFor(id, 'retrieval', 30);
    // Half of retrieval's 60 s left by the clock, no report of progress yet.
    await expectRemaining(id, 30 + BUSY.script_generation + BUSY.video_generation + BUSY.video_processing);
    // At 75 % after 30 s its pace says 10 s more, the estimate 30 s: weighted 3 : 1.
    await report(id, 'retrieval', 'IN_PROGRESS', 75);
    await expectRemaining(id, 0.75 * 10 + 0.25 * 30 + BUSY.script_generation + BUSY.video_generation + BUSY.video_processing);
    await report(id, 'retrieval', 'COMPLETED');
    await report(id, 'script_generation', 'IN_PROGRESS');
    await report(id, 'script_generation', 'COMPLETED');
    await runningFor(id, 'video_generation', 500);
    // Past its estimate: a few seconds at least, never zero or negative while it runs.
    await expectRemaining(id, 5 + BUSY.video_processing);
    await report(id, 'video_generation', 'COMPLETED');
    await report(id, 'video_processing', 'IN_PROGRESS');
    await report(id, 'video_processing', 'COMPLETED');
    expect(await etaOf(id)).toEqual({ status: 'COMPLETED', estimatedCompletionAt: null, estimatedSecondsRemaining: null });
  });

  test('a failed or cancelled request has no ETA', async () => {
    const failing = await submitRequest(as('busy'));
    await report(failing.id, 'validation', 'IN_PROGRESS');
    await report(failing.id, 'validation', 'FAILED');
    expect(await etaOf(failing.id)).toEqual({ status: 'FAILED', estimatedCompletionAt: null, estimatedSecondsRemaining: null });

    const cancelled = await submitRequest(as('busy'));
    dataOf(await app.graphql(`mutation ($id: ID!) { cancelContentRequest(id: $id) { id } }`, { token: tokens.busy, variables: { id: cancelled.id } }));
    expect(await etaOf(cancelled.id)).toEqual({ status: 'CANCELLED', estimatedCompletionAt: null, estimatedSecondsRemaining: null });
  });

  test('an organization whose history leaves the window goes back to everyone’s estimate', async () => {
    // Everything the organization finished, the simulated history and the requests of the tests above.
    const aged = await db().execute<{ request_id: string }>(sql`
      update request_stages s set completed_at = s.completed_at - interval '8 days'
        from content_requests r
       where r.id = s.request_id and r.organization_id = 'eta-busy' and s.status = 'completed'
      returning s.request_id`);
    expect(aged.rows.length).toBeGreaterThanOrEqual(ORGANIZATION_MIN_SAMPLES * STAGES.length);
    // All but one request of the simulated history come back: 19 runs of each stage are not enough.
    const back = busyHistory.slice(1);
    try {
      await db().execute(sql`
        update request_stages set completed_at = completed_at + interval '8 days'
         where request_id in (${sql.join(back.map((id) => sql`${id}::uuid`), sql`, `)})`);
      await refreshStageEstimates(db(), WINDOW_DAYS);
      const rows = await estimateRows();
      expect(rows.filter((row) => row.organization_id === 'eta-busy')).toEqual([]);
      expect(rows.filter((row) => row.organization_id === null)).toHaveLength(STAGES.length);
      const { id } = await submitRequest(as('busy'));
      await expectRemaining(id, sum(OTHERS));
    } finally {
      await db().execute(sql`update request_stages set completed_at = now() where request_id = ${busyHistory[0]!}::uuid`);
      await refreshStageEstimates(db(), WINDOW_DAYS);
      expect((await estimateRows()).filter((row) => row.organization_id === 'eta-busy')).toHaveLength(STAGES.length);
    }
  });

  describe.each(['SSE', 'WebSocket'] as const)('live updates over %s', (transport) => {
    const sockets: WsConnection[] = [];
    afterAll(async () => {
      await Promise.all(sockets.map((socket) => socket.dispose()));
    });
    const PROGRESS_WITH_ETA = `subscription ($id: ID!) {
      contentRequestProgress(id: $id) { kind status stage estimatedCompletionAt estimatedSecondsRemaining }
    }`;
    const REPLAY_WITH_ETA = `subscription ($id: ID!, $after: BigInt) {
      contentRequestProgress(id: $id, afterSequence: $after) { kind status estimatedCompletionAt estimatedSecondsRemaining }
    }`;

    test('each update carries the ETA, null from the one that completes the request', async () => {
      const { id } = await submitRequest(as('busy'));
      const subscription =
        transport === 'SSE'
          ? await subscribeSse(app.url, tokens.busy!, PROGRESS_WITH_ETA, { id })
          : (() => {
              const socket = connectWs(app.url, tokens.busy!);
              sockets.push(socket);
              return socket.subscribe(PROGRESS_WITH_ETA, { id });
            })();
      try {
        const [snapshot] = await subscription.waitForPayloads(1);
        expect(snapshot).toMatchObject({ kind: 'SNAPSHOT', status: 'PENDING' });
        expect(snapshot!.estimatedSecondsRemaining).toBeGreaterThanOrEqual(sum(BUSY) - 2);
        expect(snapshot!.estimatedSecondsRemaining).toBeLessThanOrEqual(sum(BUSY) + 1);

        // Each update taken before the next report: an update's ETA is worked out as it is delivered,
        // and one delivered after the request had finished would rightly carry null.
        let expected = 1;
        for (const stage of STAGES) {
          for (const status of ['IN_PROGRESS', 'COMPLETED'] as const) {
            await report(id, stage, status);
            await subscription.waitForPayloads(++expected);
          }
        }
        const payloads = await subscription.waitForPayloads(1 + 2 * STAGES.length);
        const final = payloads.at(-1)!;
        expect(final).toMatchObject({ kind: 'EVENT', status: 'COMPLETED', estimatedCompletionAt: null, estimatedSecondsRemaining: null });
        const inFlight = payloads.slice(1, -1);
        for (const update of inFlight) {
          expect(update.estimatedSecondsRemaining).toEqual(expect.any(Number));
          expect(Date.parse(update.estimatedCompletionAt)).not.toBeNaN();
        }
      } finally {
        await subscription.close();
      }

      // Replayed later, the same events carry the ETA as of their delivery: the request is over.
      const replay = await subscribeSse(app.url, tokens.busy!, REPLAY_WITH_ETA, { id, after: 0 });
      try {
        const replayed = await replay.waitForPayloads(1 + 2 * STAGES.length);
        expect(replayed.map((update) => update.kind)).toEqual(replayed.map(() => 'EVENT'));
        for (const update of replayed) expect(update).toMatchObject({ estimatedCompletionAt: null, estimatedSecondsRemaining: null });
      } finally {
        await replay.close();
      }
    });
  });

  test('subscribers of one request share the ETA of each event: one read of its stages, not one each', async () => {
    const { id } = await submitRequest(as('busy'));
    const subscriptions = await Promise.all(
      [1, 2, 3].map(() =>
        subscribeSse(app.url, tokens.busy!, `subscription ($id: ID!) { contentRequestProgress(id: $id) { kind estimatedSecondsRemaining } }`, { id }),
      ),
    );
    try {
      for (const subscription of subscriptions) await subscription.waitForPayloads(1);
      statements.length = 0;
      await report(id, 'validation', 'IN_PROGRESS');
      const received = await Promise.all(subscriptions.map((subscription) => subscription.waitForPayloads(2)));
      for (const payloads of received) expect(payloads[1]!.estimatedSecondsRemaining).toEqual(expect.any(Number));
      // The ETA's read of a request's stages (in pipeline order). Others touch request_stages too, such as the
      // stage-duration metrics' read for earlier tests' completed stages, which a busy machine may delay into this window.
      const stageReads = statements.filter((statement) => /^select .* from "request_stages" inner join "pipeline_stage_definitions"/i.test(statement));
      expect(stageReads, stageReads.join('\n')).toHaveLength(1);
    } finally {
      await Promise.all(subscriptions.map((subscription) => subscription.close()));
    }
  });
});
