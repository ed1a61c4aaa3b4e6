/**
 * The document limits against what the API documents: every shipped GraphiQL
 * example, and a student's history page of 20 with stages and events, pass
 * the limits; abusive documents are refused with GRAPHQL_VALIDATION_FAILED,
 * HTTP 400 and a message naming the limit.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { graphiqlOptions } from '../../src/http/graphiql.js';
import { DOCUMENT_LIMITS } from '../../src/http/graphql-server.js';
import { onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/database.js';
import { subscribeSse } from '../helpers/live.js';

let app: TestApp;
let adminToken: string;
beforeAll(async () => {
  app = await startTestApp();
  adminToken = await app.token({ sub: 'limits-admin', role: 'admin' });
});
afterAll(() => app?.close());

const HISTORY_PAGE_OF_20 = `query History {
  viewer { id name role }
  contentRequests(first: 20) {
    edges {
      node {
        id topic status currentStage progressPercentage createdAt
        stages { stage status progressPercentage startedAt completedAt }
        events(first: 20) { edges { node { sequence eventType newStatus stage progressPercentage createdAt } } pageInfo { hasNextPage endCursor } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`;

const shipped = graphiqlOptions({}).defaultTabs.map(({ query }) => [/^(?:query|mutation|subscription) (\w+)/m.exec(query)![1]!, query] as const);

test.each([...shipped, ['a history page of 20 with stages and events', HISTORY_PAGE_OF_20] as const])(
  '%s passes every document limit',
  async (_name, query) => {
    // Placeholders ("<paste a request id>") may fail when run; only the limits are checked here.
    let status: number;
    let answered: unknown;
    if (/^subscription /m.test(query)) {
      // A subscription's first event (or its refusal) is enough.
      const stream = await subscribeSse(app.url, adminToken, query);
      await waitFor(() => stream.messages.length > 0 || stream.isEnded(), 'the first event or the end of the stream');
      await stream.close();
      ({ status, messages: answered } = stream);
    } else {
      const response = await app.graphql(query, { token: adminToken });
      ({ status, errors: answered } = response);
    }
    const text = JSON.stringify(answered ?? null);
    expect(text).not.toContain('GRAPHQL_VALIDATION_FAILED');
    expect(text).not.toMatch(/limit of/i);
    expect(status).not.toBe(400);
  },
);

const abusive = {
  // 20 aliases of a page of 100 requests, each with 100 events: 200,000 event rows.
  cost: `{ ${Array.from({ length: DOCUMENT_LIMITS.aliases }, (_, i) => `a${i}: contentRequests(first: 100) { edges { node { id events(first: 100) { edges { node { sequence eventType } } } } } }`).join(' ')} }`,
  tokens: `{ ${Array.from({ length: DOCUMENT_LIMITS.tokens }, () => '__typename').join(' ')} }`,
};

test.each(Object.entries(abusive))('the %s limit refuses abuse: GRAPHQL_VALIDATION_FAILED, HTTP 400, the limit named', async (limit, query) => {
  const response = await app.graphql(query, { token: adminToken });
  expect(response.status).toBe(400);
  const error = onlyError(response);
  expect(error.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit });
  expect(error.message).toContain(`limit of ${DOCUMENT_LIMITS[limit as keyof typeof DOCUMENT_LIMITS]}`);
  expect(error.message).not.toMatch(/syntax error/i);
});
