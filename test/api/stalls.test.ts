/**
 * Stalled stages, in one process (the two-process case is
 * test/live/stall-processes.test.ts): a stage past STALL_FACTOR times its
 * expected duration gets exactly one STAGE_STALLED event, delivered live; the
 * request is in stalledRequests (per role) and in the stalled feed; it leaves
 * the list when the stage progresses, fails, or the request is cancelled; the
 * metrics count it. Stages are made old by backdating them, and the test waits
 * on the check's own record of its runs, never on a guessed delay.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests } from '../../src/db/tables.js';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { committedPosition } from '../helpers/committed.js';
import { connectWs, PROGRESS, UPDATES, type WsConnection } from '../helpers/live.js';
import { insertRequest } from '../helpers/factories.js';
import { reportStage, reportStageIn, submitRequest, type Client } from '../helpers/requests.js';
import { afterAWholeRun, backdateStage, stallEventsOf } from '../helpers/stalls.js';

const STALLED = `query ($first: Int) { stalledRequests(first: $first) { id status stages { stage status stalledAt } } }`;

let app: TestApp;
let admin: Client;
let worker: Client;
let orgAdminA: Client;
let studentA: Client;
let studentB: Client;
const sockets: WsConnection[] = [];

beforeAll(async () => {
  // A factor of 100: nothing stalls by itself during the test (validation would need 50 minutes); backdated stages do.
  app = await startTestApp({ env: { STALL_CHECK_INTERVAL_SECONDS: '0.2', STALL_FACTOR: '100', METRICS_ROLLUP_INTERVAL_SECONDS: '0' } });
  const client = async (claims: Parameters<TestApp['token']>[0]) => ({ url: app.url, token: await app.token(claims) });
  admin = await client({ sub: 'stall-admin', role: 'admin' });
  worker = await client({ sub: 'stall-worker', role: 'worker' });
  orgAdminA = await client({ sub: 'stall-org-admin', role: 'org_admin', organization_id: 'stall-org-a' });
  studentA = await client({ sub: 'stall-student-a', role: 'student', organization_id: 'stall-org-a' });
  studentB = await client({ sub: 'stall-student-b', role: 'student', organization_id: 'stall-org-b' });
});
afterAll(async () => {
  await Promise.all(sockets.map((socket) => socket.dispose()));
  await app?.close();
});

const db = () => app.testDatabase.database.db;
const ids = (rows: { id: string }[]) => rows.map((row) => row.id).sort();
const stalledIds = async (as: Client) => ids(dataOf(await app.graphql(STALLED, { token: as.token })).stalledRequests);
const ws = (as: Client) => {
  const socket = connectWs(app.url, as.token);
  sockets.push(socket);
  return socket;
};

async function running(student: Client) {
  const request = await submitRequest(student);
  await reportStage(worker, request.id, 'validation', 'IN_PROGRESS');
  return request.id;
}

describe('stalled stages', () => {
  let a: string;
  let b: string;
  let quiet: string;

  beforeAll(async () => {
    a = await running(studentA);
    b = await running(studentB);
    quiet = await running(studentA);
  });

  test('a stage past its time gets exactly one STAGE_STALLED event, live to the request and to the stalled feed', async () => {
    const progress = ws(studentA).subscribe(PROGRESS, { id: a });
    await progress.waitForPayloads(1);
    // From a cursor: the feed replays from here, so nothing is missed while it subscribes.
    const feed = ws(admin).subscribe(UPDATES, { filter: { stalled: true }, after: String(await committedPosition(db())) });
    // An ordinary change after the cursor, which the stalled feed must leave out.
    await reportStage(worker, quiet, 'validation', 'IN_PROGRESS', 10);

    await backdateStage(db(), a, 'validation');
    await backdateStage(db(), b, 'validation');

    const [, stalled] = await progress.waitForPayloads(2);
    expect(stalled).toMatchObject({ kind: 'EVENT', requestId: a, status: 'VALIDATING', stage: 'validation' });
    expect(stalled!.event.eventType).toBe('STAGE_STALLED');

    const fed = await feed.waitForPayloads(2);
    expect(fed.map((update) => update.event.eventType)).toEqual(['STAGE_STALLED', 'STAGE_STALLED']);
    expect(fed.map((update) => update.requestId).sort()).toEqual([a, b].sort());

    // Later runs find nothing new: still one event each, none for the quiet one.
    await afterAWholeRun(db(), 'stall-check');
    expect((await stallEventsOf(db(), a)).map((event) => event.stage)).toEqual(['validation']);
    expect(await stallEventsOf(db(), b)).toHaveLength(1);
    expect(await stallEventsOf(db(), quiet)).toEqual([]);
    expect(feed.payloads()).toHaveLength(2);
  });

  test('stalledRequests: admins see every stalled request, org admins their organization’s; students and workers are refused', async () => {
    expect(await stalledIds(admin)).toEqual([a, b].sort());
    expect(await stalledIds(orgAdminA)).toEqual([a]);
    const rows = dataOf(await app.graphql(STALLED, { token: admin.token })).stalledRequests as {
      id: string;
      stages: { stage: string; stalledAt: string | null }[];
    }[];
    expect(rows.find((row) => row.id === a)!.stages[0]!.stalledAt).toEqual(expect.any(String));
    for (const refused of [studentA, worker]) {
      expect(onlyError(await app.graphql(STALLED, { token: refused.token })).extensions?.code).toBe('FORBIDDEN');
    }
    const tooMany = onlyError(await app.graphql(STALLED, { token: admin.token, variables: { first: 5000 } }));
    expect(tooMany.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(tooMany.message).not.toContain('5000');
  });

  test('the stalled feed opens with a snapshot of the stalled requests in reach', async () => {
    const forAdmin = ws(admin).subscribe(UPDATES, { filter: { stalled: true } });
    const forOrgAdmin = ws(orgAdminA).subscribe(UPDATES, { filter: { stalled: true } });
    expect((await forAdmin.waitForPayloads(2)).map((update) => update.requestId).sort()).toEqual([a, b].sort());
    const [only] = await forOrgAdmin.waitForPayloads(1);
    expect(only).toMatchObject({ kind: 'SNAPSHOT', requestId: a });
  });

  test('the gauge counts the stalled requests, and every check run is counted', async () => {
    const text = await (await fetch(app.running.metricsUrl)).text();
    expect(text).toMatch(/^tracker_stalled_requests 2$/m);
    const runs = /^tracker_job_runs_total\{job="stall-check",outcome="success"\} (\d+)$/m.exec(text);
    expect(Number(runs?.[1])).toBeGreaterThan(0);
  });

  test('progress takes a request off the list, and so does failing; the stall is not written again', async () => {
    await reportStage(worker, a, 'validation', 'IN_PROGRESS', 40);
    expect(await stalledIds(admin)).toEqual([b]);
    await reportStage(worker, b, 'validation', 'FAILED', undefined, { errorMessage: 'the worker gave up' });
    expect(await stalledIds(admin)).toEqual([]);

    await afterAWholeRun(db(), 'stall-check');
    expect(await stallEventsOf(db(), a)).toHaveLength(1);
    expect(await stallEventsOf(db(), b)).toHaveLength(1);
    expect(await stalledIds(admin)).toEqual([]);
    expect(await (await fetch(app.running.metricsUrl)).text()).toMatch(/^tracker_stalled_requests 0$/m);
  });

  test('a stage that goes quiet again stalls again: a second event; cancelling the request takes it off the list', async () => {
    await backdateStage(db(), a, 'validation');
    await afterAWholeRun(db(), 'stall-check');
    expect(await stallEventsOf(db(), a)).toHaveLength(2);
    expect(await stalledIds(admin)).toEqual([a]);

    await app.graphql(`mutation ($id: ID!) { cancelContentRequest(id: $id) { id } }`, { token: admin.token, variables: { id: a } });
    expect(await stalledIds(admin)).toEqual([]);
  });
});

test('requests cancelled mid-stage (their stage left running) never crowd a real stall out of the check', async () => {
  // More than one check statement's batch (50) of old running stages whose requests were cancelled.
  const cancelled: string[] = [];
  for (let n = 0; n < 55; n++) {
    const { id } = await insertRequest(db());
    await reportStageIn(db(), id, 'validation', 'in_progress');
    await db().update(contentRequests).set({ status: 'cancelled' }).where(eq(contentRequests.id, id));
    await backdateStage(db(), id, 'validation', 72);
    cancelled.push(id);
  }
  const stalled = await running(studentA);
  await backdateStage(db(), stalled, 'validation');
  await afterAWholeRun(db(), 'stall-check');
  expect(await stallEventsOf(db(), stalled)).toHaveLength(1);
  for (const id of cancelled.slice(0, 3)) expect(await stallEventsOf(db(), id)).toEqual([]);
});
