/**
 * A live selection used often enough is run by compiled code (graphql-jit)
 * instead of graphql's executor: what a subscriber receives must not change.
 * Two admin feeds see the same changes with the same selection, one from a
 * document that has executed past the threshold (compiled) and one from a
 * fresh document (graphql's executor); every payload of the changes must be
 * the same, for a selection read per viewer (`request`) and for one shared
 * between subscribers and written straight to the socket.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { COMPILE_AFTER, compiledStats } from '../../src/http/compiled-operations.js';
import { sharedResultStats } from '../../src/live/shared-results.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { connectWs, type LiveMessage, type WsConnection } from '../helpers/live.js';
import { reportStage, submitRequest, type Client } from '../helpers/requests.js';

let app: TestApp;
let socket: WsConnection;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  app = await startTestApp();
  tokens.admin = await app.token({ sub: 'compiled-admin', role: 'admin' });
  tokens.worker = await app.token({ sub: 'compiled-worker', role: 'worker' });
  tokens.subject = await app.token({ sub: 'compiled-subject', role: 'student', organization_id: 'compiled-org' });
  for (let i = 0; i < 6; i++) tokens[`student${i}`] = await app.token({ sub: `compiled-student-${i}`, role: 'student', organization_id: 'compiled-org' });
  socket = connectWs(app.url, tokens.admin!);
  // Enough requests that a feed's opening snapshot alone executes its document past the threshold.
  for (let i = 0; i <= COMPILE_AFTER; i += 6) {
    await Promise.all([0, 1, 2, 3, 4, 5].map((s) => submitRequest(as(`student${s}`))));
  }
});
afterAll(async () => {
  await socket?.dispose();
  await app?.close();
});

const as = (who: string): Client => ({ url: app.url, token: tokens[who]! });

// Fragments, an inline fragment, aliases and directives: the compiler must treat them as graphql does.
const SHARED_SELECTION = `
  __typename kind cursor requestId sequence status stage progressPercentage estimatedCompletionAt
  ...Change
  percent: progressPercentage
  event @include(if: $withEvent) { ... on LiveRequestEvent { __typename id eventType } }
  skipped: stage @skip(if: $withEvent)`;
// Not the request's own ETA: it is worked out from the time of each read, so two reads differ by a millisecond.
const REQUEST_SELECTION = `
  request {
    __typename id correlationId status currentStage progressPercentage topic studentQuery gradeLevel studentId organizationId
    metadata result retryCount createdAt updatedAt startedAt completedAt failedAt errorMessage errorStage
    student { id role } organization { id }
    stages { id stage status progressPercentage retryCount metadata startedAt completedAt durationSeconds errorMessage stalledAt updatedAt }
    events(first: 3) { edges { cursor node { sequence eventType newStatus } } pageInfo { hasNextPage endCursor } }
  }`;
const feed = (name: string, selection: string) => `subscription ${name}($filter: ContentRequestUpdatesFilter, $withEvent: Boolean!) {
  contentRequestUpdates(filter: $filter) { ${selection} }
}
fragment Change on ContentRequestUpdate { event { id sequence eventType oldStatus newStatus stage progressPercentage createdAt } }`;

async function latestSequence(requestId: string): Promise<string> {
  const { data, errors } = await app.graphql<{ contentRequest: { events: { edges: { node: { sequence: string } }[] } } }>(
    `query ($id: ID!) { contentRequest(id: $id) { events(first: 100) { edges { node { sequence } } } } }`,
    { variables: { id: requestId }, token: tokens.admin! },
  );
  if (!data?.contentRequest) throw new Error(JSON.stringify(errors));
  return data.contentRequest.events.edges.at(-1)!.node.sequence;
}

const payloadsOf = (messages: LiveMessage[], requestId: string) =>
  messages.filter((m) => m.data?.contentRequestUpdates?.requestId === requestId && m.data.contentRequestUpdates.kind === 'EVENT');

for (const [name, selection] of [
  ['shared between subscribers', SHARED_SELECTION],
  ['read per viewer', SHARED_SELECTION + REQUEST_SELECTION],
] as const) {
  test(`a compiled selection ${name} answers every change as graphql's executor does`, async () => {
    const variables = { withEvent: true };
    // This feed's opening snapshot (one execution per request) takes its document past the threshold.
    const compiled = socket.subscribe(feed(`Compiled${name.length}`, selection), variables);
    await waitFor(() => compiled.payloads().length > COMPILE_AFTER, 'the compiled feed’s snapshot');

    const { id } = await submitRequest(as('subject'));
    // The same selection in a document of its own, seeing only this request: it stays below the threshold.
    const interpreted = socket.subscribe(feed(`Interpreted${name.length}`, selection), { ...variables, filter: { studentId: 'compiled-subject' } });
    await waitFor(() => interpreted.payloads().length > 0, 'the interpreted feed’s snapshot');

    const before = { ...sharedResultStats, ...compiledStats };
    const reports = [
      ['validation', 'IN_PROGRESS'],
      ['validation', 'COMPLETED'],
      ['retrieval', 'IN_PROGRESS'],
      ['retrieval', 'FAILED'],
    ] as const;
    const events = () => [payloadsOf(compiled.messages, id), payloadsOf(interpreted.messages, id)] as const;
    // One report at a time, both feeds served before the next: `request` is read as it is at delivery.
    for (const [stage, status] of reports) {
      await reportStage(as('worker'), id, stage, status, undefined, status === 'FAILED' ? { errorMessage: 'source unavailable' } : {});
      const latest = await latestSequence(id);
      const has = (list: LiveMessage[]) => list.some((m) => m.data!.contentRequestUpdates.sequence === latest);
      await waitFor(() => events().every(has), 'the report’s changes on both feeds');
    }

    // The compiled feed also had the request's creation, before the other feed opened.
    const [all, fromInterpreted] = events();
    const sequences = fromInterpreted.map((m) => m.data!.contentRequestUpdates.sequence);
    const fromCompiled = all.filter((m) => sequences.includes(m.data!.contentRequestUpdates.sequence));
    expect(fromCompiled.length).toBe(fromInterpreted.length);
    expect(fromCompiled.map((m) => m.data!.contentRequestUpdates.event.eventType)).toContain('FAILURE');
    for (const [index, message] of fromCompiled.entries()) {
      expect(message.errors).toBeUndefined();
      expect(message).toEqual(fromInterpreted[index]);
    }
    // The compiled feed's changes ran compiled code, the other feed's graphql's executor (the
    // queries and mutations this file sends over HTTP stay below the threshold, but submit's).
    expect(compiledStats.executions - before.executions).toBe(fromCompiled.length);
    expect(sharedResultStats.executed - before.executed).toBe(2 * fromCompiled.length);
    await compiled.close();
    await interpreted.close();
  });
}

test('a document with a string literal is never compiled: no literal can become code', async () => {
  // graphql-jit writes literal argument values into the code it generates, and turns a string
  // of a certain form into a Date constructor call there: this one would run the text after it.
  const marker = '__MAGIC_DATE__33a9e76d_02e0_4128_8e92_3530ad3da74d';
  const hostile = `subscription ($id: ID!) {
    contentRequestProgress(id: $id) {
      kind
      request { events(first: 1, after: "${marker}0)+(globalThis.compiledInjection = 1)+(0") { edges { cursor } } }
    }
  }`;
  tokens.hostile = await app.token({ sub: 'compiled-hostile', role: 'student', organization_id: 'compiled-org' });
  const { id } = await submitRequest(as('hostile'));
  const student = connectWs(app.url, tokens.hostile);
  try {
    const before = { ...sharedResultStats, ...compiledStats };
    // Each subscription's opening snapshot executes the document once: past the threshold.
    const subscriptions = Array.from({ length: COMPILE_AFTER + 5 }, () => student.subscribe(hostile, { id }));
    await waitFor(() => subscriptions.every((s) => s.messages.length > 0), 'every snapshot');
    expect((globalThis as { compiledInjection?: number }).compiledInjection).toBeUndefined();
    expect(sharedResultStats.executed - before.executed).toBeGreaterThan(COMPILE_AFTER);
    expect(compiledStats.executions - before.executions).toBe(0);
    // graphql's executor answers it: the cursor is refused like any other that is not one.
    expect(subscriptions[COMPILE_AFTER + 4]!.messages[0]!.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  } finally {
    await student.dispose();
  }
});
