/**
 * Queries and mutations whose document is in use run by compiled code
 * (src/http/compiled-operations.ts): each answer must be the one graphql's
 * executor gives. Every case is sent COMPILE_AFTER times, then once more
 * (compiled), and the same operation under another name of the same length (a fresh document,
 * graphql's executor) is sent with it; the two answers must be equal: data,
 * errors with their codes, paths and messages, and status.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { COMPILE_AFTER, compiledStats } from '../../src/http/compiled-operations.js';
import { startTestApp, type GraphQLResponse, type TestApp } from '../helpers/app.js';
import { reportStage, submitRequest, type Client } from '../helpers/requests.js';

let app: TestApp;
const tokens: Record<string, string> = {};
let ownRequest: string;
let othersRequest: string;
beforeAll(async () => {
  app = await startTestApp();
  tokens.ana = await app.token({ sub: 'jit-ana', role: 'student', organization_id: 'jit-north' });
  tokens.ben = await app.token({ sub: 'jit-ben', role: 'student', organization_id: 'jit-north' });
  tokens.admin = await app.token({ sub: 'jit-admin', role: 'admin' });
  tokens.worker = await app.token({ sub: 'jit-worker', role: 'worker' });
  const as = (who: string): Client => ({ url: app.url, token: tokens[who]! });
  ownRequest = (await submitRequest(as('ana'), { metadata: { subject: 'oceans' } })).id;
  othersRequest = (await submitRequest(as('ben'))).id;
  await submitRequest(as('ana'));
  await reportStage(as('worker'), ownRequest, 'validation', 'COMPLETED');
  await reportStage(as('worker'), ownRequest, 'retrieval', 'FAILED', undefined, { errorMessage: 'source unavailable' });
});
afterAll(() => app?.close());

const REQUEST_FIELDS = `id correlationId status currentStage progressPercentage topic studentQuery gradeLevel studentId organizationId
  metadata result retryCount createdAt updatedAt startedAt completedAt failedAt errorMessage errorStage
  student { id role } organization { id }
  stages { stage status progressPercentage retryCount metadata startedAt completedAt durationSeconds errorMessage }
  events(first: 10) { edges { cursor node { sequence eventType oldStatus newStatus stage } } pageInfo { hasNextPage endCursor } }`;

type Case = {
  name: string;
  who: string;
  operation: (name: string) => string;
  variables: () => Record<string, unknown>;
  /** False: graphql's rules refuse the variables, so graphql's executor answers, compiled or not. */
  runsCompiled?: false;
};
const cases: Case[] = [
  {
    name: 'a history page, with fragments, aliases and directives',
    who: 'ana',
    operation: (name) => `query ${name}($first: Int!, $all: Boolean!) {
      contentRequests(first: $first) { edges { cursor node { ...Request status2: status topic @include(if: $all) } } pageInfo { hasNextPage endCursor } }
    }
    fragment Request on ContentRequest { ${REQUEST_FIELDS} }`,
    variables: () => ({ first: 2, all: true }),
  },
  {
    name: 'directives on fragment spreads and inline fragments',
    who: 'ana',
    operation: (name) => `query ${name}($yes: Boolean!, $no: Boolean!) {
      contentRequests(first: 3) {
        edges { node { id topic @skip(if: $yes) status @include(if: $no) ...Shown @include(if: $yes) ...Hidden @include(if: $no)
          ... on ContentRequest @skip(if: $yes) { gradeLevel } ... @skip(if: $no) { createdAt metadata @skip(if: $yes) } } }
        ... @include(if: $no) { pageInfo { hasNextPage } }
      }
    }
    fragment Shown on ContentRequest { topic status }
    fragment Hidden on ContentRequest { studentQuery topic status metadata }`,
    variables: () => ({ yes: true, no: false }),
  },
  {
    name: 'one request by id, and one out of reach (an error with its path)',
    who: 'ana',
    operation: (name) => `query ${name}($own: ID!, $other: ID!) {
      own: contentRequest(id: $own) { ${REQUEST_FIELDS} }
      other: contentRequest(id: $other) { id topic }
    }`,
    variables: () => ({ own: ownRequest, other: othersRequest }),
  },
  {
    name: 'variables refused before execution',
    who: 'ana',
    operation: (name) => `query ${name}($first: Int!) { contentRequests(first: $first) { edges { node { id } } } }`,
    variables: () => ({ first: 'twenty' }),
    runsCompiled: false,
  },
  {
    name: 'an argument refused by the service (a coded error)',
    who: 'ana',
    operation: (name) => `query ${name}($first: Int!) { contentRequests(first: $first) { edges { node { id } } } }`,
    variables: () => ({ first: 100_000 }),
  },
  {
    name: 'a mutation refused for its input',
    who: 'worker',
    operation: (name) => `mutation ${name}($input: ReportStageInput!) { reportStage(input: $input) { id status } }`,
    variables: () => ({ input: { requestId: ownRequest, stage: 'no-such-stage', status: 'IN_PROGRESS' } }),
  },
  {
    name: 'an admin’s failed list',
    who: 'admin',
    operation: (name) => `query ${name}($filter: ContentRequestFilter) {
      contentRequests(first: 5, filter: $filter) { edges { node { ${REQUEST_FIELDS} } } }
    }`,
    variables: () => ({ filter: { status: ['FAILED'] } }),
  },
];

// What may differ between two answers: a masked error's request id.
const comparable = (response: GraphQLResponse) => ({
  status: response.status,
  data: response.data,
  errors: response.errors?.map(({ extensions, ...error }) => ({ ...error, extensions: { ...extensions, requestId: undefined } })),
});

for (const { name, who, operation, variables, runsCompiled } of cases) {
  test(`compiled, ${name}: the answer graphql's executor gives`, async () => {
    const send = (operationName: string) => app.graphql(operation(operationName), { variables: variables(), token: tokens[who]! });
    for (let i = 0; i < COMPILE_AFTER; i++) await send('Used');
    const before = compiledStats.executions;
    const compiled = await send('Used');
    const afterCompiled = compiledStats.executions;
    const interpreted = await send('Anew');

    expect(afterCompiled - before).toBe(runsCompiled === false ? 0 : 1);
    expect(compiledStats.executions).toBe(afterCompiled);
    expect(compiled.status).toBeLessThan(500);
    expect(comparable(compiled)).toEqual(comparable(interpreted));
  });
}

test('a compiled query refuses bad variables as graphql does', async () => {
  const operation = (name: string) => `query ${name}($first: Int, $after: String, $filter: ContentRequestFilter, $id: ID!) {
    contentRequests(first: $first, after: $after, filter: $filter) { edges { node { id } } }
    contentRequest(id: $id) { id }
  }`;
  const send = (name: string, variables: Record<string, unknown>) => app.graphql(operation(name), { variables, token: tokens.admin! });
  const good = { first: 2, filter: { status: ['FAILED'] }, id: ownRequest };
  for (let i = 0; i < COMPILE_AFTER; i++) await send('Used', good);
  const bad: Record<string, unknown>[] = [
    { ...good, first: '2' },
    { ...good, first: 1.5 },
    { ...good, first: 2 ** 31 },
    { ...good, first: true },
    { ...good, id: { id: ownRequest } },
    { ...good, id: 12 },
    { ...good, id: null },
    { ...good, after: 7 },
    { ...good, filter: { status: 'FAILED' } },
    { ...good, filter: { status: ['NOT_A_STATUS'] } },
    { ...good, filter: { status: [null] } },
    { ...good, filter: { unknownField: 1 } },
    { ...good, filter: { createdAfter: 'yesterday' } },
    { ...good, filter: { createdAfter: '0000-01-01T00:00:00Z' } },
    { ...good, filter: [] },
    { ...good, filter: 'x' },
  ];
  let before = compiledStats.executions;
  await send('Used', good);
  expect(compiledStats.executions - before).toBe(1);
  for (const variables of bad) {
    before = compiledStats.executions;
    const compiled = await send('Used', variables);
    const ranCompiled = compiledStats.executions - before;
    const interpreted = await send('Anew', variables);
    expect({ variables, answer: comparable(compiled) }).toEqual({ variables, answer: comparable(interpreted) });
    // Variables graphql refuses (no data at all) are answered by graphql's executor; the rest run compiled.
    expect({ variables, ranCompiled }).toEqual({ variables, ranCompiled: interpreted.data === undefined ? 0 : 1 });
  }
});
