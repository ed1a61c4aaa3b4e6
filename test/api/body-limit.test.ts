/**
 * Request bodies are bounded before they are read: a body declared larger than
 * HTTP_MAX_BODY_BYTES is refused with 413, and one of unknown length (chunked)
 * with 411, each with a short coded GraphQL error; ordinary requests pass.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
let token = '';
beforeAll(async () => {
  app = await startTestApp({ env: { HTTP_MAX_BODY_BYTES: '65536' } });
  token = await app.token({ sub: 'body-student', role: 'student', organization_id: 'body-org' });
});
afterAll(() => app?.close());

/** A POST to /graphql written by hand, so the test decides how the body is framed. */
function post(body: Buffer, framing: 'length' | 'chunked'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${app.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        authorization: `Bearer ${token}`,
        ...(framing === 'length' ? { 'content-length': body.length } : { 'transfer-encoding': 'chunked' }),
      },
    });
    request.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    // The server may answer and close before the whole body is written.
    request.on('error', reject);
    request.end(body);
  });
}

const document = (padding: number) =>
  Buffer.from(JSON.stringify({ query: `{ viewer { id } }`, variables: { padding: 'p'.repeat(padding) } }));

test('a body declared over the limit is refused with 413 before it is read', async () => {
  const answer = await post(document(70_000), 'length');
  expect(answer.status).toBe(413);
  expect(answer.text.length).toBeLessThan(500);
  const body = JSON.parse(answer.text) as { errors: { message: string; extensions: Record<string, unknown> }[] };
  expect(body.errors[0]!.extensions).toMatchObject({ code: 'BAD_REQUEST', limit: 65_536 });
  expect(body.errors[0]!.message).toMatch(/65536 bytes/);
});

test('a body of unknown length (chunked) is refused with 411', async () => {
  const answer = await post(document(10), 'chunked');
  expect(answer.status).toBe(411);
  expect(JSON.parse(answer.text).errors[0].extensions.code).toBe('BAD_REQUEST');
});

test('a body under the limit is answered as usual, and so is the next request', async () => {
  const answer = await post(document(60_000), 'length');
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.text).data.viewer.id).toBe('body-student');
  dataOf(await app.graphql(`{ viewer { id } }`, { token }));
});
