/**
 * A fault inside the service while a WebSocket operation runs (here the
 * mutation budget's table is gone, as after a botched migration) is answered
 * as over HTTP: that operation gets a masked INTERNAL_SERVER_ERROR with its
 * request id and nothing of the fault's text (which names SQL and the user),
 * the fault is logged once through the service's logger, and the socket stays
 * open for the client's other operations. Before, graphql-ws closed the whole
 * socket with 4500 and printed the fault, parameters included, to stderr.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { rawWs } from '../helpers/live.js';

const SUBMIT = `mutation ($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { created } }`;
const input = (correlationId: string) => ({ correlationId, topic: 'A private topic', studentQuery: 'A private question' });

describe('a fault inside the service during an operation', () => {
  let app: TestApp;
  let token: string;
  beforeAll(async () => {
    app = await startTestApp({ env: { RATE_LIMIT_MUTATIONS_PER_MINUTE: '100' } });
    token = await app.token({ sub: 'fault-student', role: 'student', organization_id: 'fault-org' });
    await app.testDatabase.database.db.execute(sql`alter table rate_limits rename to rate_limits_gone`);
  });
  afterAll(() => app?.close());

  const expectMasked = (error: { message: string; extensions?: Record<string, any> }) => {
    expect(error.message).toBe('Unexpected error.');
    expect(error.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(JSON.stringify(error)).not.toMatch(/rate_limits|insert|fault-student|private/i);
  };

  test('over HTTP: a masked, coded error (what WebSocket must answer too)', async () => {
    expectMasked(onlyError(await app.graphql(SUBMIT, { token, variables: { input: input('fault-http') } })));
  });

  test('over WebSocket: the same error for that operation, logged once; the socket stays open and serves the next', async () => {
    const logged = app.logs.length;
    const ws = await rawWs(app.url);
    await ws.init({ authorization: `Bearer ${token}` });
    ws.subscribe('1', SUBMIT, { input: input('fault-ws') });
    const answer = await ws.waitFor((m) => m.id === '1' && m.type !== 'complete', 'the mutation answer');
    expect(answer.type).toBe('next');
    expect(answer.payload.data?.submitContentRequest ?? null).toBeNull();
    expect(answer.payload.errors).toHaveLength(1);
    expectMasked(answer.payload.errors[0]);
    // No response header carries the request's id here: the error does, as the log line does.
    expect(answer.payload.errors[0].extensions.requestId).toEqual(expect.any(String));
    await ws.waitFor((m) => m.id === '1' && m.type === 'complete', 'complete');

    const faults = app.logs.slice(logged).filter((line) => line.level >= 50);
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({ requestId: answer.payload.errors[0].extensions.requestId, msg: 'unexpected error outside execution' });
    expect(JSON.stringify(faults[0])).not.toContain('mutations:fault-student'); // the statement's bound values

    ws.subscribe('2', `{ viewer { id } }`);
    const next = await ws.waitFor((m) => m.id === '2', 'the query answer');
    expect(next.payload).toEqual({ data: { viewer: { id: 'fault-student' } } });
    expect(ws.socket.readyState).toBe(ws.socket.OPEN);
    ws.socket.close();
  });
});
