import { listActiveRequests, listRequestMetrics } from '../services/monitoring.js';
import { listPipelineStages } from '../services/pipeline.js';
import { getRequest, getRequestByCorrelationId, listRequests } from '../services/requests.js';
import { builder } from './builder.js';
import { requireForwardPaging, requireViewer } from './context.js';
import { RequestStatusEnum } from './enums.js';
import {
  ActiveRequestRef,
  ContentRequestRef,
  PipelineStageRef,
  RequestMetricsBucketRef,
  UserRef,
} from './objects.js';

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
  viewer: t.field({
    type: UserRef,
    description: 'The signed-in user.',
    resolve: async (_root, _args, ctx) => {
      const viewer = requireViewer(ctx);
      return (await ctx.loaders.users.load(viewer.userId))!;
    },
  }),

  contentRequest: t.field({
    type: ContentRequestRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => getRequest(ctx.db, requireViewer(ctx), String(args.id)),
  }),

  contentRequestByCorrelationId: t.field({
    type: ContentRequestRef,
    nullable: true,
    args: { correlationId: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => getRequestByCorrelationId(ctx.db, requireViewer(ctx), args.correlationId),
  }),

  contentRequests: t.connection({
    type: ContentRequestRef,
    nullable: true,
    description: 'Requests you can see, newest first, in keyset pages (forward only: first and after).',
    args: { filter: t.arg({ type: ContentRequestFilter, required: false }) },
    resolve: async (_root, args, ctx) => {
      const viewer = requireViewer(ctx);
      requireForwardPaging(args, 'requests');
      const page = await listRequests(ctx.db, viewer, {
        filter: args.filter ? { ...args.filter, studentId: args.filter.studentId?.toString(), organizationId: args.filter.organizationId?.toString() } : null,
        first: args.first,
        after: args.after,
      });
      return {
        edges: page.rows.map((row) => ({ cursor: row.cursor, node: row })),
        pageInfo: {
          hasNextPage: page.hasNextPage,
          hasPreviousPage: args.after != null,
          startCursor: page.rows[0]?.cursor ?? null,
          endCursor: page.rows.at(-1)?.cursor ?? null,
        },
      };
    },
  }),

  activeRequests: t.field({
    type: [ActiveRequestRef],
    description: 'Requests in flight, overdue ones first.',
    args: {
      overdueOnly: t.arg.boolean({ required: false }),
      first: t.arg.int({ required: false, description: 'At most 1000; 100 by default.' }),
    },
    resolve: (_root, args, ctx) => listActiveRequests(ctx.db, requireViewer(ctx), args),
  }),

  requestMetrics: t.field({
    type: [RequestMetricsBucketRef],
    description: 'Hourly buckets in [from, to), oldest first (the last 24 hours by default). Admins: any organization, or all; org admins: their own.',
    args: {
      organizationId: t.arg.id({ required: false }),
      from: t.arg({ type: 'DateTime', required: false }),
      to: t.arg({ type: 'DateTime', required: false }),
    },
    resolve: (_root, args, ctx) =>
      listRequestMetrics(ctx.db, requireViewer(ctx), { ...args, organizationId: args.organizationId?.toString() }),
  }),

  pipelineStages: t.field({
    type: [PipelineStageRef],
    resolve: (_root, _args, ctx) => {
      requireViewer(ctx);
      return listPipelineStages(ctx.db);
    },
  }),
}));
