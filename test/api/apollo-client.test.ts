/**
 * Apollo Client (the real library, in Node) against the real server, as a
 * mobile app would use it: queries with automatic persisted queries (a hash
 * instead of the document once the server knows it), and subscriptions over
 * graphql-ws (GraphQLWsLink): Apollo's default HTTP transport for
 * subscriptions (multipart/mixed) is not served.
 */
import { createHash } from 'node:crypto';
import { ApolloClient, ApolloLink, gql, HttpLink, InMemoryCache } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PERSISTED_QUERIES } from '../../src/http/persisted-queries.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { reportStage, submitRequest } from '../helpers/requests.js';

const sha256 = (document: string) => createHash('sha256').update(document).digest('hex');

describe('Apollo Client', () => {
  let app: TestApp;
  let studentToken: string;
  /** Every request body Apollo's HTTP link sent, in order (the real fetch does the sending). */
  const sent: Record<string, any>[] = [];
  const recordingFetch: typeof fetch = (input, init) => {
    sent.push(JSON.parse(String(init?.body)));
    return fetch(input, init);
  };
  const httpClient = (token: string) =>
    new ApolloClient({
      link: ApolloLink.from([
        new PersistedQueryLink({ sha256 }),
        new HttpLink({ uri: `${app.url}/graphql`, fetch: recordingFetch, headers: { authorization: `Bearer ${token}` } }),
      ]),
      cache: new InMemoryCache(),
    });

  beforeAll(async () => {
    app = await startTestApp();
    studentToken = await app.token({ sub: 'apollo-student', role: 'student', organization_id: 'apollo-org' });
  });
  afterAll(() => app?.close());

  test('with automatic persisted queries: the document travels once, then only its hash', async () => {
    const query = gql`query Me { viewer { id role } }`;
    const first = await httpClient(studentToken).query({ query });
    expect(first.data).toEqual({ viewer: { __typename: 'User', id: 'apollo-student', role: 'STUDENT' } });
    // Unknown hash (PERSISTED_QUERY_NOT_FOUND), then the document with its hash.
    expect(sent.map((body) => typeof body.query)).toEqual(['undefined', 'string']);
    const hash = sent[0]!.extensions.persistedQuery.sha256Hash as string;

    // Another client (another phone) with the same document: the hash alone is enough now.
    sent.length = 0;
    const second = await httpClient(studentToken).query({ query });
    expect(second.data).toEqual(first.data);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.query).toBeUndefined();
    expect(sent[0]!.extensions.persistedQuery.sha256Hash).toBe(hash);
  });

  /** A POST carrying the APQ extension, as the persisted-queries link sends it. */
  const postPersisted = async (query: string | undefined, hash: string) => {
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${studentToken}` },
      body: JSON.stringify({ query, extensions: { persistedQuery: { version: 1, sha256Hash: hash } } }),
    });
    return { status: response.status, body: (await response.json()) as { data?: unknown; errors?: { extensions: { code: string } }[] } };
  };

  test('a document longer than the store keeps still runs, but is not kept', async () => {
    const long = `# ${'x'.repeat(PERSISTED_QUERIES.maxChars)}\n{ viewer { id } }`;
    expect(await postPersisted(long, sha256(long))).toMatchObject({ status: 200, body: { data: { viewer: { id: 'apollo-student' } } } });
    const again = await postPersisted(undefined, sha256(long));
    expect(again.status).toBe(404);
    expect(again.body.errors?.[0]?.extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
  });

  test('a hash that does not match its document is refused', async () => {
    const refused = await postPersisted('{ viewer { id } }', sha256('{ other }'));
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]?.extensions.code).toBe('PERSISTED_QUERY_MISMATCH');
  });

  test("Apollo's default HTTP transport for subscriptions (multipart/mixed) is answered 406: use GraphQLWsLink", async () => {
    const errors: unknown[] = [];
    const client = new ApolloClient({ link: new HttpLink({ uri: `${app.url}/graphql`, headers: { authorization: `Bearer ${studentToken}` } }), cache: new InMemoryCache() });
    const subscription = client
      .subscribe({ query: gql`subscription Feed { contentRequestUpdates { kind } }` })
      .subscribe({ next: ({ error }) => error && errors.push(error), error: (error: unknown) => errors.push(error) });
    try {
      await expect.poll(() => errors.length).toBe(1);
      expect(errors[0]).toMatchObject({ statusCode: 406 });
    } finally {
      subscription.unsubscribe();
    }
  });

  test('subscribes over graphql-ws (GraphQLWsLink): the snapshot, then each change', async () => {
    const request = await submitRequest({ url: app.url, token: studentToken });
    const wsClient = createClient({
      url: `${app.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${studentToken}` },
    });
    const client = new ApolloClient({ link: new GraphQLWsLink(wsClient), cache: new InMemoryCache() });
    const updates: { kind: string; status: string }[] = [];
    const subscription = client
      .subscribe<{ contentRequestProgress: { kind: string; status: string } }>({
        query: gql`subscription Progress($id: ID!) { contentRequestProgress(id: $id) { kind sequence status } }`,
        variables: { id: request.id },
      })
      .subscribe({ next: ({ data }) => updates.push(data!.contentRequestProgress) });
    try {
      await expect.poll(() => updates.length).toBe(1);
      const workerToken = await app.token({ sub: 'apollo-worker', role: 'worker' });
      await reportStage({ url: app.url, token: workerToken }, request.id, 'validation', 'IN_PROGRESS');
      await expect.poll(() => updates.length).toBe(2);
      expect(updates).toMatchObject([{ kind: 'SNAPSHOT', status: 'PENDING' }, { kind: 'EVENT', status: 'VALIDATING' }]);
    } finally {
      subscription.unsubscribe();
      await wsClient.dispose();
    }
  });
});
