/**
 * A request's organization is the claim of the token that submitted it, not
 * whatever organization the process happened to store for the user first
 * (issue item 18): one user, two tokens in two organizations, interleaved.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';
import { submitRequest } from '../helpers/requests.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

const LIST = `{ contentRequests(first: 100) { edges { node { id } } } }`;

const submitAs = (token: string, correlationId: string) => submitRequest({ url: app.url, token }, { correlationId });

const listedFor = async (token: string) =>
  (dataOf(await app.graphql(LIST, { token })).contentRequests.edges as { node: { id: string } }[]).map((e) => e.node.id);

test('each submission lands in the organization of the token that made it, whatever token came before', async () => {
  const t1 = await app.token({ sub: 'moving-student', role: 'student', organization_id: 'org-one' });
  const t2 = await app.token({ sub: 'moving-student', role: 'student', organization_id: 'org-two' });
  const adminOne = await app.token({ sub: 'admin-one', role: 'org_admin', organization_id: 'org-one' });
  const adminTwo = await app.token({ sub: 'admin-two', role: 'org_admin', organization_id: 'org-two' });

  const first = await submitAs(t1, 'move-1');
  const second = await submitAs(t2, 'move-2');
  const third = await submitAs(t1, 'move-3');

  expect([first.organizationId, second.organizationId, third.organizationId]).toEqual(['org-one', 'org-two', 'org-one']);
  expect((await listedFor(adminOne)).sort()).toEqual([first.id, third.id].sort());
  expect(await listedFor(adminTwo)).toEqual([second.id]);
});

test('an admin submitting for a student files it under the student’s stored organization', async () => {
  const student = await app.token({ sub: 'stored-student', role: 'student', organization_id: 'org-three' });
  const admin = await app.token({ sub: 'platform-admin', role: 'admin' });
  await submitAs(student, 'stored-1');
  const submitted = await submitRequest({ url: app.url, token: admin }, { correlationId: 'stored-2', studentId: 'stored-student' });
  expect(submitted.organizationId).toBe('org-three');
});
