/**
 * Content requests: submit, read, list, cancel, retry. Every read is scoped
 * to the viewer (access.ts); a request out of reach is NOT_FOUND, exactly like
 * one that does not exist.
 */
import { createHash } from 'node:crypto';
import { and, eq, getTableColumns, gte, inArray, lt, ne, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import { nameForStatement, type Queryable } from '../db/client.js';
import { contentRequests, users } from '../db/tables.js';
import { badInput, notFound, ServiceError } from './errors.js';
import { eventPageAsJson, eventPageFromJson, type EventPage } from './events.js';
import { pageOfRows, rowsToRead } from './pages.js';
import { preparedPerDatabase, preparedPerShape } from './prepared.js';
import { inTransaction } from './transaction.js';
import { isStorableDate, metadataObject, optionalText, parseInput, requiredText, uuid } from './validation.js';
import {
  assertMaySubmitFor,
  canSeeRequest,
  canSubmitFor,
  idempotencyKeyScope,
  withinScope,
  type Viewer,
} from './access.js';

export type ContentRequest = typeof contentRequests.$inferSelect;
import type { RequestStatus } from './pipeline.js';

export type { RequestStatus };

/** A content_requests column by its property name. */
export type RequestColumn = keyof ContentRequest;
const requestColumns = getTableColumns(contentRequests);
export const REQUEST_COLUMNS: ReadonlySet<string> = new Set(Object.keys(requestColumns));

/**
 * The columns a read that names some also reads: the row's identity and whose
 * it is, which access checks and nested reads (stages, events, the student) use.
 */
const IDENTITY_COLUMNS: readonly RequestColumn[] = ['id', 'studentId', 'organizationId'];

type SelectedColumns = { key: string; columns: Partial<typeof requestColumns> };
const ALL_COLUMNS: SelectedColumns = { key: 'all', columns: requestColumns };
// By the caller's set: the schema hands the same set for every run of one operation.
const selectedBySet = new WeakMap<ReadonlySet<RequestColumn>, SelectedColumns>();

/**
 * The columns to select for a caller that reads only `columns` (all of them
 * when undefined), in the table's order, and a key naming that set.
 */
function selectedColumns(columns: ReadonlySet<RequestColumn> | undefined): SelectedColumns {
  if (!columns) return ALL_COLUMNS;
  let selected = selectedBySet.get(columns);
  if (!selected) {
    const chosen = Object.fromEntries(
      Object.entries(requestColumns).filter(([name]) => columns.has(name as RequestColumn) || IDENTITY_COLUMNS.includes(name as RequestColumn)),
    ) as Partial<typeof requestColumns>;
    selected = { key: Object.keys(chosen).join(','), columns: chosen };
    selectedBySet.set(columns, selected);
  }
  return selected;
}

/** A request the viewer may see. With `columns`, the row holds only those and its identity (as listRequests). */
export function getRequest(db: Queryable, viewer: Viewer, id: string, columns?: ReadonlySet<RequestColumn>): Promise<ContentRequest> {
  const requestId = parseInput(uuid, id, 'id');
  return findVisible(db, viewer, 'id', requestId, `content request ${requestId}`, columns);
}

export function getRequestByCorrelationId(
  db: Queryable,
  viewer: Viewer,
  correlationId: string,
  columns?: ReadonlySet<RequestColumn>,
): Promise<ContentRequest> {
  const key = parseInput(requiredText(255), correlationId, 'correlationId');
  return findVisible(db, viewer, 'correlationId', storedCorrelationId(viewer, key).correlationId, 'content request with that correlation id', columns);
}

/**
 * What content_requests.correlation_id holds for a caller's key: a global key
 * as given; a key scoped to its user (access.ts decides whose are) as
 * `user:` + sha256 of (user id, key), bounded whatever the key's length. The
 * key as given is kept beside it for display.
 */
export function storedCorrelationId(
  viewer: Viewer,
  key: string,
): { correlationId: string; submittedCorrelationId: string | null } {
  if (idempotencyKeyScope(viewer) === 'global') return { correlationId: key, submittedCorrelationId: null };
  const scoped = createHash('sha256').update(JSON.stringify([viewer.userId, key])).digest('hex');
  return { correlationId: `user:${scoped}`, submittedCorrelationId: key };
}

/**
 * A request by id with one page of its events, in one statement (one round
 * trip where getRequest and then eventPagesOfRequests take two). The events
 * are read only for the row the viewer's rule let through.
 */
export async function getRequestWithEventPage(
  db: Queryable,
  viewer: Viewer,
  id: string,
  page: { first: number; afterSequence: number },
): Promise<{ request: ContentRequest; events: EventPage }> {
  const requestId = parseInput(uuid, id, 'id');
  const [row] = await withEventsStatement(db, viewer).execute({ ...viewerValues(viewer), value: requestId, afterSequence: page.afterSequence, take: rowsToRead(page.first) });
  if (!row) throw new ServiceError('NOT_FOUND', `content request ${requestId} was not found`);
  const { events, ...request } = row;
  return { request, events: eventPageFromJson(events, page.first) };
}

async function findVisible(db: Queryable, viewer: Viewer, by: LookupKey, value: string, description: string, columns: ReadonlySet<RequestColumn> | undefined) {
  const [row] = await lookupStatement(db, viewer, by, columns).execute({ ...viewerValues(viewer), value });
  if (!row) throw new ServiceError('NOT_FOUND', `${description} was not found`);
  return row;
}

/**
 * The viewer's rule (access.ts) with the viewer's ids as placeholders
 * (viewerValues fills them): the rule is the same SQL for every viewer of
 * one role, so a statement built with it serves them all.
 */
function viewerPlaceholders(role: Viewer['role'], hasOrganization: boolean): Viewer {
  return {
    role,
    userId: sql.placeholder('viewerId'),
    organizationId: hasOrganization ? sql.placeholder('viewerOrganization') : null,
  } as unknown as Viewer;
}

const viewerValues = (viewer: Viewer) => ({ viewerId: viewer.userId, viewerOrganization: viewer.organizationId });

type LookupKey = 'id' | 'correlationId';

/** One request by a unique key, one statement per (key, role, organization or not, columns). */
const lookupStatements = preparedPerShape<ReturnType<typeof buildLookupStatement>>(200);

function lookupStatement(db: Queryable, viewer: Viewer, by: LookupKey, columns: ReadonlySet<RequestColumn> | undefined) {
  const hasOrganization = viewer.organizationId !== null;
  const selected = selectedColumns(columns);
  return lookupStatements(db, `${by}:${viewer.role}:${hasOrganization}:${selected.key}`, () =>
    buildLookupStatement(db, viewerPlaceholders(viewer.role, hasOrganization), by, selected.columns),
  );
}

/** getRequestWithEventPage's statement, one per (role, organization or not): at most 8. */
const withEventsStatements = preparedPerShape<ReturnType<typeof buildWithEventsStatement>>(8);

function withEventsStatement(db: Queryable, viewer: Viewer) {
  const hasOrganization = viewer.organizationId !== null;
  return withEventsStatements(db, `${viewer.role}:${hasOrganization}`, () =>
    buildWithEventsStatement(db, viewerPlaceholders(viewer.role, hasOrganization)),
  );
}

function buildWithEventsStatement(db: Queryable, viewer: Viewer) {
  return db
    .select({ ...getTableColumns(contentRequests), events: eventPageAsJson(contentRequests.id) })
    .from(contentRequests)
    .where(withinScope(viewer, eq(contentRequests.id, sql.placeholder('value'))))
    .prepare(nameForStatement(db));
}

function buildLookupStatement(db: Queryable, viewer: Viewer, by: LookupKey, columns: Partial<typeof requestColumns>) {
  return db
    // Typed as the whole row: a caller naming columns reads only those (getRequest).
    .select(columns as typeof requestColumns)
    .from(contentRequests)
    .where(withinScope(viewer, eq(contentRequests[by], sql.placeholder('value'))))
    .prepare(nameForStatement(db));
}

// ---------------------------------------------------------------------------
// Submitting

const submitInput = z.object({
  correlationId: requiredText(255),
  topic: requiredText(500),
  studentQuery: requiredText(10_000),
  gradeLevel: optionalText(50),
  studentId: optionalText(100),
  metadata: metadataObject.nullish(),
});
export type SubmitRequestInput = z.input<typeof submitInput>;

/**
 * Idempotent on the correlation id (as storedCorrelationId scopes it): the
 * first call creates the request, any later one (even 20 at once) returns it
 * with `created: false`. Reusing an id for a different request is a CONFLICT.
 */
export async function submitRequest(
  db: Queryable,
  viewer: Viewer,
  input: SubmitRequestInput,
): Promise<{ request: ContentRequest; created: boolean }> {
  const fields = parseInput(submitInput, input);
  const studentId = fields.studentId ?? viewer.userId;
  const student = await findStudentFor(db, viewer, studentId);
  const key = storedCorrelationId(viewer, fields.correlationId);

  const [inserted] = await insertRequest(db).execute({
    ...key,
    studentId: student.userId,
    organizationId: student.organizationId,
    topic: fields.topic,
    studentQuery: fields.studentQuery,
    gradeLevel: fields.gradeLevel ?? null,
    metadata: fields.metadata ?? {},
  });
  if (inserted) return { request: inserted, created: true };

  // Someone got there first; under READ COMMITTED this new statement sees their row.
  const [existing] = await db
    .select()
    .from(contentRequests)
    .where(eq(contentRequests.correlationId, key.correlationId));
  const sameRequest =
    existing &&
    existing.studentId === student.userId &&
    existing.topic === fields.topic &&
    existing.studentQuery === fields.studentQuery &&
    canSeeRequest(viewer, existing);
  if (!sameRequest) {
    throw new ServiceError(
      'CONFLICT',
      'correlationId: already used for a different request',
      { field: 'correlationId' },
    );
  }
  return { request: existing, created: false };
}

/**
 * The student a request is submitted for, if the viewer may (access.ts).
 * Submitting for yourself, the organization is your token's claim: the stored user row keeps whichever
 * organization was provisioned last, which with two tokens for one user need not be this one's.
 */
async function findStudentFor(db: Queryable, viewer: Viewer, studentId: string) {
  assertMaySubmitFor(viewer, studentId);
  const [student] = await studentById(db).execute({ id: studentId });
  if (!student || !canSubmitFor(viewer, student)) throw badInput('studentId', 'is not a student you can submit for');
  return studentId === viewer.userId ? { ...student, organizationId: viewer.organizationId } : student;
}

// Every submit runs these two: built once (prepared.ts), not on each call.
const studentById = preparedPerDatabase((db) =>
  db
    .select({ userId: users.userId, organizationId: users.organizationId })
    .from(users)
    .where(eq(users.userId, sql.placeholder('id')))
    .prepare(nameForStatement(db)),
);

const insertRequest = preparedPerDatabase((db) =>
  db
    .insert(contentRequests)
    .values({
      correlationId: sql.placeholder('correlationId'),
      submittedCorrelationId: sql.placeholder('submittedCorrelationId'),
      studentId: sql.placeholder('studentId'),
      organizationId: sql.placeholder('organizationId'),
      topic: sql.placeholder('topic'),
      studentQuery: sql.placeholder('studentQuery'),
      gradeLevel: sql.placeholder('gradeLevel'),
      metadata: sql.placeholder('metadata'),
    })
    .onConflictDoNothing({ target: contentRequests.correlationId })
    .returning()
    .prepare(nameForStatement(db)),
);

// ---------------------------------------------------------------------------
// Listing, newest first, in keyset pages on (created_at, id)

const MAX_PAGE = 100;

/**
 * Newest first, written as the indexes are: drizzle-kit writes `.desc()` as
 * DESC NULLS LAST, and PostgreSQL uses such an index for ORDER BY … DESC only
 * when the query says NULLS LAST too (plain DESC means NULLS FIRST). The
 * columns are NOT NULL, so the order is the same; without it every page sorts.
 */
export const NEWEST_FIRST = [
  sql`${contentRequests.createdAt} desc nulls last`,
  sql`${contentRequests.id} desc nulls last`,
];

const listFilter = z
  .object({
    // GraphQL's ContentRequestStatus (the database's enum) has checked each value; this bounds the list.
    status: z.array(z.string().max(100)).max(50).nullish(),
    studentId: optionalText(100),
    organizationId: optionalText(100),
    errorStage: optionalText(100),
    createdAfter: z.date().nullish(),
    createdBefore: z.date().nullish(),
  })
  .nullish();
export type RequestFilter = z.input<typeof listFilter>;

/** A page of requests; a row's cursor is encoded when asked for (a page is mostly read for its last one only). */
export class RequestPage {
  readonly rows: ContentRequest[];
  constructor(
    private readonly listed: { request: ContentRequest; cursorTime: string }[],
    readonly hasNextPage: boolean,
  ) {
    this.rows = listed.map((row) => row.request);
  }
  cursorAt(index: number): string {
    const { request, cursorTime } = this.listed[index]!;
    return encodeCursor(cursorTime, request.id);
  }
}

/**
 * A page of the requests the viewer may see. With `columns`, each row holds
 * only those (and its identity, IDENTITY_COLUMNS): for a caller that reads no
 * others, as a GraphQL selection that names its fields.
 */
export async function listRequests(
  db: Queryable,
  viewer: Viewer,
  options: { filter?: RequestFilter; first?: number | null; after?: string | null; columns?: ReadonlySet<RequestColumn> },
): Promise<RequestPage> {
  const filter = parseInput(listFilter, options.filter) ?? {};
  const first = options.first ?? 20;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) {
    throw badInput('first', `must be between 1 and ${MAX_PAGE}`);
  }
  const after = options.after ? decodeCursor(options.after) : undefined;

  const rows = await listStatement(db, viewer, filter, after !== undefined, options.columns).execute({
    ...viewerValues(viewer),
    ...Object.fromEntries((filter.status ?? []).map((status, i) => [`status${i}`, status])),
    studentId: filter.studentId,
    organizationId: filter.organizationId,
    errorStage: filter.errorStage,
    createdAfter: filter.createdAfter,
    createdBefore: filter.createdBefore,
    afterTime: after?.createdAt,
    afterId: after?.id,
    limit: rowsToRead(first),
  });

  const page = pageOfRows(rows, first);
  return new RequestPage(page.rows, page.hasNextPage);
}

/**
 * listRequests' statement for one shape (the viewer's role, whether an org admin
 * has an organization, how many statuses, which filters, which columns), built once with
 * placeholders: Drizzle building each page's SQL afresh was about 5% of the
 * service's CPU serving the history page. Named or not as prepared.ts says.
 */
const listStatements = preparedPerShape<ReturnType<typeof buildListStatement>>(200);

function listStatement(
  db: Queryable,
  viewer: Viewer,
  filter: NonNullable<z.output<typeof listFilter>>,
  paged: boolean,
  columns: ReadonlySet<RequestColumn> | undefined,
) {
  const selected = selectedColumns(columns);
  const shape = {
    role: viewer.role,
    hasOrganization: viewer.organizationId !== null,
    statuses: filter.status?.length ?? 0,
    studentId: Boolean(filter.studentId),
    organizationId: Boolean(filter.organizationId),
    errorStage: Boolean(filter.errorStage),
    createdAfter: Boolean(filter.createdAfter),
    createdBefore: Boolean(filter.createdBefore),
    paged,
  };
  return listStatements(db, `${Object.values(shape).join(':')}:${selected.key}`, () => buildListStatement(db, shape, selected.columns));
}

type ListShape = {
  role: Viewer['role'];
  hasOrganization: boolean;
  statuses: number;
  studentId: boolean;
  organizationId: boolean;
  errorStage: boolean;
  createdAfter: boolean;
  createdBefore: boolean;
  paged: boolean;
};

function buildListStatement(db: Queryable, shape: ListShape, columns: Partial<typeof requestColumns>) {
  const value = (name: string) => sql.placeholder(name);
  const viewer = viewerPlaceholders(shape.role, shape.hasOrganization);
  const statuses = Array.from({ length: shape.statuses }, (_, i) => value(`status${i}`));
  const conditions: (SQL | undefined)[] = [
    statuses.length ? inArray(contentRequests.status, statuses) : undefined,
    shape.studentId ? eq(contentRequests.studentId, value('studentId')) : undefined,
    shape.organizationId ? eq(contentRequests.organizationId, value('organizationId')) : undefined,
    shape.errorStage ? eq(contentRequests.errorStage, value('errorStage')) : undefined,
    shape.createdAfter ? gte(contentRequests.createdAt, value('createdAfter')) : undefined,
    shape.createdBefore ? lt(contentRequests.createdAt, value('createdBefore')) : undefined,
    // A row comparison, so the (…, created_at DESC, id DESC) indexes serve every page alike.
    shape.paged
      ? sql`(${contentRequests.createdAt}, ${contentRequests.id}) < (${value('afterTime')}::timestamptz, ${value('afterId')}::uuid)`
      : undefined,
  ];
  return db
    .select({
      // Typed as the whole row: a caller naming columns reads only those (listRequests).
      request: columns as typeof requestColumns,
      // The cursor keeps created_at's microseconds, which a JS Date would drop.
      cursorTime: sql<string>`to_char(${contentRequests.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
    })
    .from(contentRequests)
    .where(withinScope(viewer, ...conditions))
    .orderBy(...NEWEST_FIRST)
    .limit(value('limit'))
    .prepare(nameForStatement(db));
}

// A forged cursor's time must be one PostgreSQL can compare (not year 0000).
const cursorShape = z.tuple([z.iso.datetime().refine((time) => isStorableDate(new Date(time))), uuid]);

function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = cursorShape.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString()));
    return { createdAt, id };
  } catch {
    throw badInput('after', 'is not a cursor this API issued');
  }
}

// ---------------------------------------------------------------------------
// Cancel and retry: the lifecycle's own rule (content_request_transition_allowed) decides

export function cancelRequest(db: Queryable, viewer: Viewer, id: string): Promise<ContentRequest> {
  return moveRequest(db, viewer, id, 'cancelled');
}

/** A failed request goes back to pending; the database counts the retry and logs it. */
export function retryRequest(db: Queryable, viewer: Viewer, id: string): Promise<ContentRequest> {
  return moveRequest(db, viewer, id, 'failed-to-pending');
}

async function moveRequest(
  db: Queryable,
  viewer: Viewer,
  id: string,
  move: 'cancelled' | 'failed-to-pending',
): Promise<ContentRequest> {
  const requestId = parseInput(uuid, id, 'id');
  const target: RequestStatus = move === 'cancelled' ? 'cancelled' : 'pending';
  return inTransaction(db, async (tx) => {
    const [current] = await tx
      .select()
      .from(contentRequests)
      .where(withinScope(viewer, eq(contentRequests.id, requestId)))
      .for('no key update');
    if (!current) throw notFound('content request', requestId);
    if (move === 'failed-to-pending' && current.status !== 'failed') {
      throw new ServiceError('INVALID_TRANSITION', `only a failed request can be retried; this one is ${current.status}`);
    }
    // The lifecycle trigger lets a same-status update through (the stage
    // triggers rewrite the request in place), but a caller asking for a move
    // must get one: cancelling a cancelled request changes nothing, not even updatedAt.
    const [updated] = await tx
      .update(contentRequests)
      .set({ status: target })
      .where(
        and(
          eq(contentRequests.id, requestId),
          ne(contentRequests.status, target),
          sql`content_request_transition_allowed(${contentRequests.status}, ${target}, ${contentRequests.retryCount} > 0)`,
        ),
      )
      .returning();
    if (!updated) {
      throw new ServiceError('INVALID_TRANSITION', `content request ${requestId} cannot go from ${current.status} to ${target}`);
    }
    return updated;
  });
}
