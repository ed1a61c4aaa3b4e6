/**
 * ContentRequest, with the queries that read requests (contentRequest,
 * contentRequestByCorrelationId, contentRequests) and the mutations a
 * submitter uses (submit, cancel, retry). Nested fields go through the
 * per-operation DataLoaders.
 */
import { getArgumentValues, getNamedType, Kind, type FieldNode, type GraphQLObjectType, type GraphQLResolveInfo } from 'graphql';
import { checkEventPage } from '../../services/events.js';
import {
  cancelRequest,
  getRequest,
  getRequestByCorrelationId,
  getRequestWithEventPage,
  listRequests,
  retryRequest,
  submitRequest,
  type ContentRequest,
  type RequestPage,
} from '../../services/requests.js';
import { builder } from '../builder.js';
import { etaFields } from './eta-fields.js';
import { readsColumns, selectedRequestColumns } from '../request-columns.js';
import { requireForwardPaging, requireViewer } from '../context.js';
import { RequestStatusEnum } from '../enums.js';
import { OrganizationRef } from './organization.js';
import { RequestEventRef } from './request-event.js';
import { RequestStageRef } from './request-stage.js';
import { UserRef } from './user.js';

export const ContentRequestRef = builder.objectRef<ContentRequest>('ContentRequest').implement({
  description: 'A student’s request for learning content, and where the pipeline stands on it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The request’s UUID, as workers pass it around.' }),
    correlationId: t.string({
      ...readsColumns('correlationId', 'submittedCorrelationId'),
      description: 'The idempotency key as its submitter gave it.',
      resolve: (request) => request.submittedCorrelationId ?? request.correlationId,
    }),
    studentId: t.exposeID('studentId'),
    organizationId: t.exposeID('organizationId', { nullable: true }),
    topic: t.exposeString('topic'),
    studentQuery: t.exposeString('studentQuery'),
    gradeLevel: t.exposeString('gradeLevel', { nullable: true }),
    metadata: t.expose('metadata', { type: 'JSON' }),
    status: t.expose('status', { type: RequestStatusEnum }),
    currentStage: t.exposeString('currentStage', { nullable: true }),
    progressPercentage: t.exposeInt('progressPercentage'),
    retryCount: t.exposeInt('retryCount'),
    result: t.expose('result', { type: 'JSON', nullable: true }),
    errorMessage: t.exposeString('errorMessage', { nullable: true }),
    errorStage: t.exposeString('errorStage', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    failedAt: t.expose('failedAt', { type: 'DateTime', nullable: true }),
    ...etaFields(t, (request, ctx) => ctx.loaders.etas.load(request), readsColumns('id', 'status', 'organizationId')),

    stages: t.field({
      ...readsColumns('id'),
      type: [RequestStageRef],
      description: 'The stages reported so far, in pipeline order.',
      resolve: (request, _args, ctx) => ctx.loaders.stagesByRequest.load(request.id),
    }),
    events: t.connection({
      ...readsColumns('id'),
      type: RequestEventRef,
      description: 'The event log, oldest first. The cursor is the event’s sequence number.',
      resolve: async (request, args, ctx) => {
        const page = eventPageOf(args);
        const { rows, hasNextPage } = await ctx.loaders.eventPages.load({ requestId: request.id, ...page });
        return {
          edges: rows.map((event) => ({ cursor: String(event.sequence), node: event })),
          pageInfo: {
            hasNextPage,
            hasPreviousPage: page.afterSequence > 0,
            startCursor: rows[0] ? String(rows[0].sequence) : null,
            endCursor: rows.at(-1) ? String(rows.at(-1)!.sequence) : null,
          },
        };
      },
    }),
    student: t.field({
      ...readsColumns('studentId'),
      type: UserRef,
      nullable: true,
      resolve: (request, _args, ctx) => ctx.loaders.users.load(request.studentId),
    }),
    organization: t.field({
      ...readsColumns('organizationId'),
      type: OrganizationRef,
      nullable: true,
      resolve: (request, _args, ctx) =>
        request.organizationId ? ctx.loaders.organizations.load(request.organizationId) : null,
    }),
  }),
});

type EventPageArgs = { first?: number | null; after?: string | null; last?: number | null; before?: string | null };

/** The page of events a request's `events` arguments ask for; a coded error if they are not one. */
function eventPageOf(args: EventPageArgs) {
  requireForwardPaging(args, 'events');
  const afterSequence = args.after == null ? 0 : Number(args.after);
  return checkEventPage(args.first, Number.isFinite(afterSequence) ? afterSequence : -1);
}

/**
 * The page of events a contentRequest selection asks for when it can be read
 * with the request: one `events` field, plain fields beside it (no fragment,
 * no directive on it), valid arguments. Anything else: undefined, and the
 * events resolver reads (or refuses) the page as usual.
 */
function selectedEventPage(info: GraphQLResolveInfo) {
  if (info.fieldNodes.length !== 1) return undefined;
  const selections = info.fieldNodes[0]!.selectionSet?.selections ?? [];
  if (selections.some((selection) => selection.kind !== Kind.FIELD)) return undefined;
  const events = selections.filter((selection): selection is FieldNode => selection.kind === Kind.FIELD && selection.name.value === 'events');
  if (events.length !== 1 || events[0]!.directives?.length) return undefined;
  const type = getNamedType(info.returnType) as GraphQLObjectType;
  try {
    return eventPageOf(getArgumentValues(type.getFields().events!, events[0]!, info.variableValues) as EventPageArgs);
  } catch {
    return undefined;
  }
}

/** An edge of a page of requests: its cursor is encoded only if the operation selects it. */
class RequestEdge {
  constructor(
    readonly node: ContentRequest,
    private readonly page: RequestPage,
    private readonly index: number,
  ) {}
  get cursor(): string {
    return this.page.cursorAt(this.index);
  }
}

/** A page's pageInfo: its cursors, too, are encoded only if selected (a history page reads only endCursor). */
class RequestPageInfo {
  constructor(
    private readonly page: RequestPage,
    readonly hasPreviousPage: boolean,
  ) {}
  get hasNextPage(): boolean {
    return this.page.hasNextPage;
  }
  get startCursor(): string | null {
    return this.page.rows.length ? this.page.cursorAt(0) : null;
  }
  get endCursor(): string | null {
    return this.page.rows.length ? this.page.cursorAt(this.page.rows.length - 1) : null;
  }
}

const ContentRequestFilter = builder.inputType('ContentRequestFilter', {
  fields: (t) => ({
    status: t.field({ type: [RequestStatusEnum], required: false, description: 'Any of these statuses.' }),
    studentId: t.id({ required: false }),
    organizationId: t.id({ required: false }),
    errorStage: t.string({ required: false }),
    createdAfter: t.field({ type: 'DateTime', required: false, description: 'Inclusive.' }),
    createdBefore: t.field({ type: 'DateTime', required: false, description: 'Exclusive.' }),
  }),
});

builder.queryFields((t) => ({
  contentRequest: t.field({
    type: ContentRequestRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    // With its page of events in the same statement when the selection asks for one (the events
    // resolver then finds it in its loader): one round trip, not two.
    resolve: async (_root, args, ctx, info) => {
      const viewer = requireViewer(ctx);
      const page = selectedEventPage(info);
      if (!page) return getRequest(ctx.db, viewer, String(args.id), selectedRequestColumns(info, []));
      const { request, events } = await getRequestWithEventPage(ctx.db, viewer, String(args.id), page);
      ctx.loaders.eventPages.prime({ requestId: request.id, ...page }, events);
      return request;
    },
  }),

  contentRequestByCorrelationId: t.field({
    type: ContentRequestRef,
    nullable: true,
    args: { correlationId: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx, info) => getRequestByCorrelationId(ctx.db, requireViewer(ctx), args.correlationId, selectedRequestColumns(info, [])),
  }),

  contentRequests: t.connection({
    type: ContentRequestRef,
    nullable: true,
    description: 'Requests you can see, newest first, in keyset pages (forward only: first and after).',
    args: { filter: t.arg({ type: ContentRequestFilter, required: false }) },
    resolve: async (_root, args, ctx, info) => {
      const viewer = requireViewer(ctx);
      requireForwardPaging(args, 'requests');
      const page = await listRequests(ctx.db, viewer, {
        columns: selectedRequestColumns(info, ['edges', 'node']),
        filter: args.filter ? { ...args.filter, studentId: args.filter.studentId?.toString(), organizationId: args.filter.organizationId?.toString() } : null,
        first: args.first,
        after: args.after,
      });
      return {
        edges: page.rows.map((row, index) => new RequestEdge(row, page, index)),
        pageInfo: new RequestPageInfo(page, args.after != null),
      };
    },
  }),
}));

const SubmitContentRequestInput = builder.inputType('SubmitContentRequestInput', {
  fields: (t) => ({
    correlationId: t.string({ required: true, description: 'Your idempotency key (up to 255 characters): resubmitting it returns the same request.' }),
    topic: t.string({ required: true, description: 'Up to 500 characters.' }),
    studentQuery: t.string({ required: true, description: 'Up to 10,000 characters.' }),
    gradeLevel: t.string({ required: false, description: 'Up to 50 characters.' }),
    studentId: t.id({ required: false, description: 'Whom the request is for; yourself by default. Students may only submit for themselves.' }),
    metadata: t.field({ type: 'JSON', required: false, description: 'A JSON object, up to 16 KB.' }),
  }),
});

const SubmitContentRequestPayload = builder
  .objectRef<{ request: Awaited<ReturnType<typeof submitRequest>>['request']; created: boolean }>('SubmitContentRequestPayload')
  .implement({
    fields: (t) => ({
      request: t.field({ type: ContentRequestRef, resolve: (payload) => payload.request }),
      created: t.exposeBoolean('created', { description: 'False when the correlation id was already submitted.' }),
    }),
  });

builder.mutationFields((t) => ({
  submitContentRequest: t.field({
    type: SubmitContentRequestPayload,
    nullable: true,
    args: { input: t.arg({ type: SubmitContentRequestInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      submitRequest(ctx.db, requireViewer(ctx), {
        ...input,
        studentId: input.studentId?.toString(),
        metadata: input.metadata as Record<string, unknown> | null | undefined,
      }),
  }),

  cancelContentRequest: t.field({
    type: ContentRequestRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => cancelRequest(ctx.db, requireViewer(ctx), String(args.id)),
  }),

  retryContentRequest: t.field({
    type: ContentRequestRef,
    nullable: true,
    description: 'Sends a failed request back to pending; the retry count goes up and a retry event is logged.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => retryRequest(ctx.db, requireViewer(ctx), String(args.id)),
  }),
}));
