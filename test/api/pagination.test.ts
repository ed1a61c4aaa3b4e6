/**
 * contentRequests as a keyset-paginated Relay connection, through real HTTP:
 * 250 requests (some sharing one created_at to the microsecond, some a
 * microsecond apart) paged 20 at a time come back newest first, each exactly
 * once, for every viewer's scope and every filter; forward paging only.
 */
import { randomUUID } from 'node:crypto';
import { inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { contentRequests } from '../../src/db/tables.js';
import { dataOf, onlyError, startTestApp, type TestApp } from '../helpers/app.js';
import { insertOrganization, insertUser } from '../helpers/factories.js';

const ORG_A = 'page-org-a';
const ORG_B = 'page-org-b';
const STUDENTS = [
  { userId: 'page-student-1', organizationId: ORG_A },
  { userId: 'page-student-2', organizationId: ORG_A },
  { userId: 'page-student-3', organizationId: ORG_B },
] as const;

type Row = {
  id: string;
  /** Microseconds since the epoch: created_at exactly as stored. */
  micros: number;
  studentId: string;
  organizationId: string;
  status: 'PENDING' | 'VALIDATING' | 'FAILED' | 'CANCELLED';
  errorStage: string | null;
};

const TOTAL = 250;
const PAGE = 20;
// Positions (in newest-first order) that share created_at with the one before:
// a group of five across the first page boundary (18-22), others across the
// 6th/7th boundary (119-121), and inside pages.
const SAME_TIME_AS_PREVIOUS = new Set([19, 20, 21, 22, 41, 100, 101, 120, 121, 200, 201, 202]);
// Position 60 is one microsecond older than 59: the same JavaScript millisecond.
const ONE_MICROSECOND_OLDER = 60;
// Position 99 (and the two sharing its time) sits on a whole millisecond: the created-at filters' boundary.
const WHOLE_MILLISECOND = 99;

function buildRows(): Row[] {
  const rows: Row[] = [];
  let micros = Date.parse('2026-02-20T12:00:00.000Z') * 1000 + 123_456;
  for (let k = 0; k < TOTAL; k++) {
    if (k > 0 && !SAME_TIME_AS_PREVIOUS.has(k)) {
      micros -= k === ONE_MICROSECOND_OLDER ? 1 : 37 * 60_000_000 + ((k * 7919) % 997);
      if (k === WHOLE_MILLISECOND) micros -= micros % 1000;
    }
    const student = STUDENTS[k % 3]!;
    const kind = k % 10;
    rows.push({
      id: randomUUID(),
      micros,
      studentId: student.userId,
      organizationId: student.organizationId,
      status: kind === 3 || kind === 7 ? 'FAILED' : kind === 5 ? 'CANCELLED' : kind === 1 ? 'VALIDATING' : 'PENDING',
      errorStage: kind === 3 ? 'retrieval' : kind === 7 ? 'validation' : null,
    });
  }
  // Insertion order must not matter: shuffle deterministically.
  return rows.map((row, i) => ({ row, key: (i * 104_729) % TOTAL })).sort((a, b) => a.key - b.key).map(({ row }) => row);
}

/** created_at as PostgreSQL text, to the microsecond. */
function isoMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  return new Date(ms).toISOString().replace('Z', `${String(micros % 1000).padStart(3, '0')}Z`);
}

/** The documented order: created_at descending, then id descending (PostgreSQL orders uuids as lowercase hex). */
const newestFirst = (a: Row, b: Row) => b.micros - a.micros || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

let app: TestApp;
let rows: Row[];
let ordered: Row[];
let tokens: { admin: string; student1: string; student3: string; orgAdminA: string; orgAdminB: string };

beforeAll(async () => {
  app = await startTestApp();
  const db = app.testDatabase.database.db;
  await insertOrganization(db, { organizationId: ORG_A, name: 'Page School A' });
  await insertOrganization(db, { organizationId: ORG_B, name: 'Page School B' });
  for (const student of STUDENTS) await insertUser(db, { ...student, role: 'student' });

  rows = buildRows();
  ordered = [...rows].sort(newestFirst);
  // The fixture is what the comments above say it is.
  expect(ordered[18]!.micros).toBe(ordered[22]!.micros);
  expect(ordered[59]!.micros - ordered[60]!.micros).toBe(1);
  expect(Math.floor(ordered[59]!.micros / 1000)).toBe(Math.floor(ordered[60]!.micros / 1000));
  expect(ordered[WHOLE_MILLISECOND]!.micros % 1000).toBe(0);

  await db.insert(contentRequests).values(
    rows.map((row, i) => ({
      id: row.id,
      correlationId: `page-${i}`,
      studentId: row.studentId,
      organizationId: row.organizationId,
      topic: `Topic ${i}`,
      studentQuery: 'Explain it',
      createdAt: sql`${isoMicros(row.micros)}::timestamptz`,
    })),
  );
  const idsWith = (predicate: (row: Row) => boolean) => rows.filter(predicate).map((row) => row.id);
  await db.update(contentRequests).set({ status: 'validating' }).where(inArray(contentRequests.id, idsWith((r) => r.status === 'VALIDATING')));
  await db.update(contentRequests).set({ status: 'cancelled' }).where(inArray(contentRequests.id, idsWith((r) => r.status === 'CANCELLED')));
  for (const stage of ['retrieval', 'validation']) {
    await db
      .update(contentRequests)
      .set({ status: 'failed', errorStage: stage, errorMessage: `${stage} broke` })
      .where(inArray(contentRequests.id, idsWith((r) => r.errorStage === stage)));
  }

  tokens = {
    admin: await app.token({ sub: 'page-admin', role: 'admin' }),
    student1: await app.token({ sub: 'page-student-1', role: 'student', organization_id: ORG_A }),
    student3: await app.token({ sub: 'page-student-3', role: 'student', organization_id: ORG_B }),
    orgAdminA: await app.token({ sub: 'page-org-admin-a', role: 'org_admin', organization_id: ORG_A }),
    orgAdminB: await app.token({ sub: 'page-org-admin-b', role: 'org_admin', organization_id: ORG_B }),
  };
});
afterAll(() => app?.close());

const LIST = `query ($filter: ContentRequestFilter, $first: Int, $after: String, $last: Int, $before: String) {
  contentRequests(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id studentId organizationId status errorStage createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

type Edge = { cursor: string; node: { id: string; studentId: string; organizationId: string; status: string; errorStage: string | null; createdAt: string } };
type Connection = {
  edges: Edge[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
};

async function page(token: string, variables: Record<string, unknown>): Promise<Connection> {
  return dataOf(await app.graphql(LIST, { token, variables })).contentRequests as Connection;
}

/** Follows endCursor until hasNextPage is false; checks each page's shape on the way. */
async function pageThrough(token: string, filter: Record<string, unknown> | null = null, first = PAGE) {
  const ids: string[] = [];
  const sizes: number[] = [];
  let after: string | null = null;
  for (let n = 0; n < 100; n++) {
    const connection: Connection = await page(token, { filter, first, after });
    const { edges, pageInfo } = connection;
    sizes.push(edges.length);
    ids.push(...edges.map((edge) => edge.node.id));
    expect(pageInfo.hasPreviousPage).toBe(after !== null);
    expect(pageInfo.startCursor).toBe(edges[0]?.cursor ?? null);
    expect(pageInfo.endCursor).toBe(edges.at(-1)?.cursor ?? null);
    // Newest first, as the API's clock shows it.
    const times = edges.map((edge) => Date.parse(edge.node.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    if (!pageInfo.hasNextPage) return { ids, sizes };
    expect(edges).toHaveLength(first);
    after = pageInfo.endCursor;
  }
  throw new Error('more than 100 pages: paging does not end');
}

const expectedIds = (predicate: (row: Row) => boolean = () => true) => ordered.filter(predicate).map((row) => row.id);

describe('an admin pages through every request', () => {
  test('20 at a time: every row exactly once, newest first, with ties broken by id', async () => {
    const { ids, sizes } = await pageThrough(tokens.admin);
    expect(sizes).toEqual([...Array<number>(12).fill(20), 10]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expectedIds());
  });

  test('page sizes that do not divide the total, and a single-row page', async () => {
    expect((await pageThrough(tokens.admin, null, 7)).ids).toEqual(expectedIds());
    expect((await pageThrough(tokens.admin, null, 100)).ids).toEqual(expectedIds());
    const one = await page(tokens.admin, { first: 1 });
    expect(one.edges.map((e) => e.node.id)).toEqual([ordered[0]!.id]);
    expect(one.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
  });

  test('the page after the last one is empty', async () => {
    let after: string | null = null;
    for (let n = 0; n < 13; n++) after = (await page(tokens.admin, { first: PAGE, after })).pageInfo.endCursor;
    const beyond = await page(tokens.admin, { first: PAGE, after });
    expect(beyond.edges).toEqual([]);
    expect(beyond.pageInfo).toEqual({ hasNextPage: false, hasPreviousPage: true, startCursor: null, endCursor: null });
  });

  test('a request created while paging appears on no later page (it is newer than the cursor)', async () => {
    const first = await page(tokens.admin, { first: PAGE });
    const db = app.testDatabase.database.db;
    const [fresh] = await db
      .insert(contentRequests)
      .values({ correlationId: 'page-late-arrival', studentId: STUDENTS[0].userId, organizationId: ORG_A, topic: 'Late', studentQuery: 'Late' })
      .returning();
    try {
      const rest = await pageThrough(tokens.admin, null);
      // From the top the new one comes first; following the old cursor it never shows.
      expect(rest.ids[0]).toBe(fresh!.id);
      const second = await page(tokens.admin, { first: PAGE, after: first.pageInfo.endCursor });
      expect(second.edges.map((e) => e.node.id)).toEqual(expectedIds().slice(PAGE, 2 * PAGE));
    } finally {
      await db.delete(contentRequests).where(inArray(contentRequests.id, [fresh!.id]));
    }
  });
});

describe('each viewer pages through their own reach only', () => {
  test('a student sees only their own requests, all of them', async () => {
    const { ids } = await pageThrough(tokens.student1);
    expect(ids).toEqual(expectedIds((row) => row.studentId === 'page-student-1'));
    expect(ids.length).toBe(84);
  });

  test("a student filtering on another student's id gets nothing", async () => {
    const other = await page(tokens.student1, { first: PAGE, filter: { studentId: 'page-student-2' } });
    expect(other.edges).toEqual([]);
    expect(other.pageInfo.hasNextPage).toBe(false);
    const otherOrg = await page(tokens.student1, { first: PAGE, filter: { organizationId: ORG_B } });
    expect(otherOrg.edges).toEqual([]);
  });

  test("an org admin sees exactly their organization's requests", async () => {
    const a = await pageThrough(tokens.orgAdminA);
    expect(a.ids).toEqual(expectedIds((row) => row.organizationId === ORG_A));
    const b = await pageThrough(tokens.orgAdminB);
    expect(b.ids).toEqual(expectedIds((row) => row.organizationId === ORG_B));
    expect(a.ids.length + b.ids.length).toBe(TOTAL);
  });

  test("an org admin filtering on another organization gets nothing; on one of their students, that student's", async () => {
    expect((await page(tokens.orgAdminA, { first: PAGE, filter: { organizationId: ORG_B } })).edges).toEqual([]);
    expect((await page(tokens.orgAdminA, { first: PAGE, filter: { studentId: 'page-student-3' } })).edges).toEqual([]);
    const { ids } = await pageThrough(tokens.orgAdminA, { studentId: 'page-student-2' });
    expect(ids).toEqual(expectedIds((row) => row.studentId === 'page-student-2'));
  });
});

describe('filters, paged through to the end', () => {
  test('status: any of a list', async () => {
    const { ids } = await pageThrough(tokens.admin, { status: ['FAILED', 'CANCELLED'] });
    expect(ids).toEqual(expectedIds((row) => row.status === 'FAILED' || row.status === 'CANCELLED'));
    expect(ids.length).toBe(75);
    const validating = await pageThrough(tokens.admin, { status: ['VALIDATING'] });
    expect(validating.ids).toEqual(expectedIds((row) => row.status === 'VALIDATING'));
    // An empty list is no restriction.
    expect((await pageThrough(tokens.admin, { status: [] }, 100)).ids).toEqual(expectedIds());
  });

  test('studentId and organizationId', async () => {
    expect((await pageThrough(tokens.admin, { studentId: 'page-student-3' })).ids).toEqual(
      expectedIds((row) => row.studentId === 'page-student-3'),
    );
    expect((await pageThrough(tokens.admin, { organizationId: ORG_A })).ids).toEqual(
      expectedIds((row) => row.organizationId === ORG_A),
    );
    expect((await page(tokens.admin, { first: PAGE, filter: { studentId: 'nobody-at-all' } })).edges).toEqual([]);
  });

  test('errorStage', async () => {
    const { ids } = await pageThrough(tokens.admin, { errorStage: 'retrieval' });
    expect(ids).toEqual(expectedIds((row) => row.errorStage === 'retrieval'));
    expect(ids.length).toBe(25);
  });

  test('several filters at once, within a scope', async () => {
    const filter = { status: ['FAILED'], errorStage: 'validation', organizationId: ORG_A };
    const { ids } = await pageThrough(tokens.admin, filter, 5);
    expect(ids).toEqual(expectedIds((row) => row.errorStage === 'validation' && row.organizationId === ORG_A));
    const mine = await pageThrough(tokens.student3, { status: ['PENDING', 'VALIDATING'] });
    expect(mine.ids).toEqual(
      expectedIds((row) => row.studentId === 'page-student-3' && (row.status === 'PENDING' || row.status === 'VALIDATING')),
    );
  });

  test('createdAfter is inclusive, createdBefore exclusive: split at one instant they cover everything once', async () => {
    const boundaryMicros = ordered[WHOLE_MILLISECOND]!.micros;
    const boundary = new Date(boundaryMicros / 1000).toISOString();
    const after = await pageThrough(tokens.admin, { createdAfter: boundary });
    const before = await pageThrough(tokens.admin, { createdBefore: boundary });
    // The three requests created at the boundary itself are on the "after" side.
    expect(after.ids).toEqual(expectedIds((row) => row.micros >= boundaryMicros));
    expect(after.ids.slice(-3)).toEqual(ordered.slice(99, 102).map((row) => row.id));
    expect(before.ids).toEqual(expectedIds((row) => row.micros < boundaryMicros));
    expect([...after.ids, ...before.ids]).toEqual(expectedIds());
  });

  test('a created-at window, in another time zone notation', async () => {
    const from = ordered[150]!.micros;
    const to = ordered[30]!.micros;
    // 1 ms past a row's microsecond time, written with a +02:00 offset.
    const toDate = new Date(Math.floor(to / 1000) + 1);
    const toText = new Date(toDate.getTime() + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    const fromText = new Date(Math.floor(from / 1000)).toISOString();
    const { ids } = await pageThrough(tokens.admin, { createdAfter: fromText, createdBefore: toText });
    const fromMicros = Math.floor(from / 1000) * 1000;
    expect(ids).toEqual(expectedIds((row) => row.micros >= fromMicros && row.micros < toDate.getTime() * 1000));
    expect(ids[0]).toBe(ordered[30]!.id);
    expect(ids.at(-1)).toBe(ordered[150]!.id);
  });

  test('an empty window is an empty page', async () => {
    const at = new Date(ordered[10]!.micros / 1000).toISOString();
    const empty = await page(tokens.admin, { first: PAGE, filter: { createdAfter: at, createdBefore: at } });
    expect(empty).toEqual({ edges: [], pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null } });
  });
});

describe('cursors', () => {
  test('a cursor from one filter continues another from the same point in the order', async () => {
    const unfiltered = await page(tokens.admin, { first: PAGE });
    const cursor = unfiltered.pageInfo.endCursor!;
    const position = ordered.findIndex((row) => row.id === unfiltered.edges.at(-1)!.node.id);
    expect(position).toBe(PAGE - 1);

    const failed = await page(tokens.admin, { first: PAGE, after: cursor, filter: { status: ['FAILED'] } });
    expect(failed.edges.map((e) => e.node.id)).toEqual(
      ordered.slice(PAGE).filter((row) => row.status === 'FAILED').slice(0, PAGE).map((row) => row.id),
    );

    // And back: a filtered page's cursor, unfiltered.
    const studentPage = await page(tokens.admin, { first: 10, filter: { studentId: 'page-student-2' } });
    const at = ordered.findIndex((row) => row.id === studentPage.edges.at(-1)!.node.id);
    const rest = await page(tokens.admin, { first: PAGE, after: studentPage.pageInfo.endCursor });
    expect(rest.edges.map((e) => e.node.id)).toEqual(ordered.slice(at + 1, at + 1 + PAGE).map((row) => row.id));
  });

  test("a cursor from another viewer's page only continues the viewer's own list", async () => {
    const adminPage = await page(tokens.admin, { first: 50 });
    const cursor = adminPage.pageInfo.endCursor;
    const at = ordered.findIndex((row) => row.id === adminPage.edges.at(-1)!.node.id);
    const { edges } = await page(tokens.student1, { first: PAGE, after: cursor });
    expect(edges.map((e) => e.node.id)).toEqual(
      ordered.slice(at + 1).filter((row) => row.studentId === 'page-student-1').slice(0, PAGE).map((row) => row.id),
    );
  });

  test('every edge cursor resumes right after its own row', async () => {
    const { edges } = await page(tokens.admin, { first: 30 });
    // Edges 18-22 share one created_at: the id breaks the tie.
    for (const index of [17, 18, 19, 20, 21, 22]) {
      const next = await page(tokens.admin, { first: 2, after: edges[index]!.cursor });
      expect(next.edges.map((e) => e.node.id)).toEqual([ordered[index + 1]!.id, ordered[index + 2]!.id]);
    }
    // Rows 59 and 60 are one microsecond apart, in the same millisecond.
    const [at59] = (await page(tokens.admin, { first: 60 })).edges.slice(59);
    expect(at59!.node.id).toBe(ordered[59]!.id);
    const next = await page(tokens.admin, { first: 1, after: at59!.cursor });
    expect(next.edges[0]!.node.id).toBe(ordered[60]!.id);
  });
});

describe('what paging refuses', () => {
  const refusal = async (variables: Record<string, unknown>, token = tokens.admin) => {
    const response = await app.graphql(LIST, { token, variables });
    expect(response.data?.contentRequests ?? null).toBeNull();
    return onlyError(response);
  };

  test('last and before: forward paging only, BAD_USER_INPUT', async () => {
    const cursor = (await page(tokens.admin, { first: PAGE })).pageInfo.endCursor;
    for (const variables of [{ last: 5 }, { first: 5, before: cursor }, { last: 5, before: cursor }]) {
      const error = await refusal(variables);
      expect(error.extensions?.code).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(/first and after/);
    }
  });

  test('page sizes outside 1-100 and cursors this API did not issue: BAD_USER_INPUT naming the argument', async () => {
    for (const first of [0, -1, 101]) {
      const error = await refusal({ first });
      expect(error.extensions?.code).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(/^first: must be between 1 and 100/);
    }
    const forged = [
      'not-a-cursor',
      Buffer.from('["2026-01-01T00:00:00Z"]').toString('base64url'),
      Buffer.from('["yesterday","6f1c2a3e-8b4d-4c1a-9e2f-0a1b2c3d4e5f"]').toString('base64url'),
      Buffer.from("[\"2026-01-01T00:00:00Z\",\"' or 1=1 --\"]").toString('base64url'),
    ];
    for (const after of forged) {
      const error = await refusal({ first: PAGE, after });
      expect(error.extensions?.code).toBe('BAD_USER_INPUT');
      expect(error.message).toMatch(/^after: /);
    }
  });

  test('without a token: UNAUTHENTICATED', async () => {
    const response = await app.graphql(LIST, { variables: { first: PAGE } });
    expect(onlyError(response).extensions?.code).toBe('UNAUTHENTICATED');
  });
});
