/**
 * Students' text never reaches the logs: a database error on a write logs
 * its SQLSTATE, constraint and table and how many values were bound, but not
 * the values (Drizzle's "params: …", the server's "Failing row contains …").
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { onlyError, startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
let studentToken: string;
beforeAll(async () => {
  app = await startTestApp();
  studentToken = await app.token({ sub: 'log-privacy-student', role: 'student', organization_id: 'log-privacy-org' });
  // A constraint this test adds to its own database: a real database error on
  // a real write, whose statement carries the student's text.
  await app.testDatabase.database.db.execute(
    sql.raw(`alter table content_requests add constraint log_privacy_probe check (topic not like '%REFUSED-TOPIC%')`),
  );
});
afterAll(() => app?.close());

const SUBMIT = `mutation ($input: SubmitContentRequestInput!) { submitContentRequest(input: $input) { created } }`;

describe('logs of a failed write', () => {
  test('carry the SQLSTATE and constraint, and none of the bound values', async () => {
    const marker = 'PRIVATE-STUDENT-TEXT-7f3a';
    const response = await app.graphql(SUBMIT, {
      token: studentToken,
      variables: {
        input: {
          correlationId: `${marker}-id`,
          topic: `REFUSED-TOPIC ${marker}`,
          studentQuery: `${marker} ${'q'.repeat(9_000)}`,
          metadata: { note: marker },
        },
      },
    });
    const error = onlyError(response);
    expect(error.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    const requestId = error.extensions?.requestId as string;

    const lines = app.logs.filter((line) => line.requestId === requestId);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of app.logs) {
      const text = JSON.stringify(line);
      expect(text).not.toContain(marker);
      expect(text).not.toContain('qqqqqqqq');
      expect(text.length).toBeLessThan(8_000);
    }
    // What an operator needs is still there.
    const logged = JSON.stringify(lines);
    expect(logged).toContain('23514');
    expect(logged).toContain('log_privacy_probe');
    expect(logged).toMatch(/"paramCount":[1-9]\d*/); // how many values, not which
  });
});
