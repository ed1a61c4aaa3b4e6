/** The object types. Nested fields go through the per-operation DataLoaders. */
import { checkEventPage } from '../services/events.js';
import type { ActiveRequest, MetricsBucket } from '../services/monitoring.js';
import type { PipelineStage } from '../services/pipeline.js';
import type { ContentRequest } from '../services/requests.js';
import type { RequestEvent } from '../services/events.js';
import type { RequestStage } from '../services/stages.js';
import type { Organization, User } from '../services/users.js';
import { builder } from './builder.js';
import { requireForwardPaging } from './context.js';
import { EventTypeEnum, RequestStatusEnum, RoleEnum, SeverityEnum, StageStatusEnum } from './enums.js';

export const OrganizationRef = builder.objectRef<Organization>('Organization').implement({
  fields: (t) => ({
    id: t.exposeID('organizationId'),
    name: t.exposeString('name'),
    domain: t.exposeString('domain', { nullable: true }),
    subscriptionTier: t.exposeString('subscriptionTier', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const UserRef = builder.objectRef<User>('User').implement({
  fields: (t) => ({
    id: t.exposeID('userId'),
    name: t.exposeString('name', { nullable: true }),
    email: t.exposeString('email', { nullable: true }),
    role: t.expose('role', { type: RoleEnum }),
    organizationId: t.exposeID('organizationId', { nullable: true }),
    organization: t.field({
      type: OrganizationRef,
      nullable: true,
      resolve: (user, _args, ctx) => (user.organizationId ? ctx.loaders.organizations.load(user.organizationId) : null),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const PipelineStageRef = builder.objectRef<PipelineStage>('PipelineStage').implement({
  description: 'One step of the pipeline, in order; weights say how much of the progress bar it is.',
  fields: (t) => ({
    name: t.exposeString('stageName'),
    displayName: t.exposeString('displayName'),
    order: t.exposeInt('stageOrder'),
    weight: t.exposeInt('progressWeight'),
    requestStatus: t.expose('requestStatus', { type: RequestStatusEnum, description: 'The status a request takes while this stage runs.' }),
    expectedDurationSeconds: t.exposeInt('expectedDurationSeconds'),
    description: t.exposeString('description', { nullable: true }),
  }),
});

export const RequestStageRef = builder.objectRef<RequestStage>('RequestStage').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    requestId: t.exposeID('requestId'),
    stage: t.exposeString('stageName'),
    status: t.expose('status', { type: StageStatusEnum }),
    progressPercentage: t.exposeInt('progressPercentage', { description: 'Progress within this stage, 0-100.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    durationSeconds: t.exposeFloat('durationSeconds', { nullable: true }),
    errorMessage: t.exposeString('errorMessage', { nullable: true }),
    retryCount: t.exposeInt('retryCount'),
    metadata: t.expose('metadata', { type: 'JSON' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

export const RequestEventRef = builder.objectRef<RequestEvent>('RequestEvent').implement({
  description: 'One entry of a request’s append-only log: every change of status, stage or progress.',
  fields: (t) => ({
    id: t.expose('id', { type: 'BigInt', description: 'Global, increasing with time of insertion (not of commit).' }),
    requestId: t.exposeID('requestId'),
    sequence: t.expose('sequence', { type: 'BigInt', description: '1, 2, 3 … per request, gap-free, in commit order.' }),
    eventType: t.expose('eventType', { type: EventTypeEnum }),
    oldStatus: t.expose('oldStatus', { type: RequestStatusEnum, nullable: true }),
    newStatus: t.expose('newStatus', { type: RequestStatusEnum }),
    stage: t.exposeString('stage', { nullable: true }),
    progressPercentage: t.exposeInt('progressPercentage'),
    severity: t.expose('severity', { type: SeverityEnum }),
    message: t.exposeString('message', { nullable: true }),
    metadata: t.expose('metadata', { type: 'JSON' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const ContentRequestRef = builder.objectRef<ContentRequest>('ContentRequest').implement({
  description: 'A student’s request for learning content, and where the pipeline stands on it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The request’s UUID, as workers pass it around.' }),
    correlationId: t.string({
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

    stages: t.field({
      type: [RequestStageRef],
      description: 'The stages reported so far, in pipeline order.',
      resolve: (request, _args, ctx) => ctx.loaders.stagesByRequest.load(request.id),
    }),
    events: t.connection({
      type: RequestEventRef,
      description: 'The event log, oldest first. The cursor is the event’s sequence number.',
      resolve: async (request, args, ctx) => {
        requireForwardPaging(args, 'events');
        const afterSequence = args.after == null ? 0 : Number(args.after);
        const page = checkEventPage(args.first, Number.isFinite(afterSequence) ? afterSequence : -1);
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
      type: UserRef,
      nullable: true,
      resolve: (request, _args, ctx) => ctx.loaders.users.load(request.studentId),
    }),
    organization: t.field({
      type: OrganizationRef,
      nullable: true,
      resolve: (request, _args, ctx) =>
        request.organizationId ? ctx.loaders.organizations.load(request.organizationId) : null,
    }),
  }),
});

export const ActiveRequestRef = builder.objectRef<ActiveRequest>('ActiveRequest').implement({
  description: 'A request in flight, from the active_requests_dashboard view.',
  fields: (t) => ({
    id: t.exposeID('id'),
    correlationId: t.exposeString('correlationId'),
    studentId: t.exposeID('studentId'),
    studentName: t.exposeString('studentName', { nullable: true }),
    organizationId: t.exposeID('organizationId', { nullable: true }),
    organizationName: t.exposeString('organizationName', { nullable: true }),
    topic: t.exposeString('topic'),
    gradeLevel: t.exposeString('gradeLevel', { nullable: true }),
    status: t.expose('status', { type: RequestStatusEnum }),
    currentStage: t.exposeString('currentStage', { nullable: true }),
    currentStageDisplayName: t.exposeString('currentStageDisplayName', { nullable: true }),
    progressPercentage: t.exposeInt('progressPercentage'),
    retryCount: t.exposeInt('retryCount'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    stageStatus: t.expose('stageStatus', { type: StageStatusEnum, nullable: true }),
    stageStartedAt: t.expose('stageStartedAt', { type: 'DateTime', nullable: true }),
    stageExpectedDurationSeconds: t.exposeInt('stageExpectedDurationSeconds', { nullable: true }),
    secondsSinceCreated: t.exposeInt('secondsSinceCreated'),
    secondsInStage: t.exposeInt('secondsInStage', { nullable: true }),
    isOverdue: t.exposeBoolean('isOverdue', { description: 'The current stage has run past its expected duration.' }),
  }),
});

export const RequestMetricsBucketRef = builder.objectRef<MetricsBucket>('RequestMetricsBucket').implement({
  description: 'One hour of one organization’s requests (by creation time), from request_metrics.',
  fields: (t) => ({
    hour: t.expose('metricHour', { type: 'DateTime' }),
    organizationId: t.exposeID('organizationId', { nullable: true }),
    totalRequests: t.exposeInt('totalRequests'),
    completedRequests: t.exposeInt('completedRequests'),
    failedRequests: t.exposeInt('failedRequests'),
    cancelledRequests: t.exposeInt('cancelledRequests'),
    successRate: t.exposeFloat('successRate', { nullable: true, description: 'Percent, 0-100.' }),
    failureRate: t.exposeFloat('failureRate', { nullable: true, description: 'Percent, 0-100.' }),
    avgDurationSeconds: t.exposeFloat('avgDurationSeconds', { nullable: true }),
    p95DurationSeconds: t.exposeFloat('p95DurationSeconds', { nullable: true }),
    errorBreakdown: t.expose('errorBreakdown', { type: 'JSON', description: 'Failures by stage: { stage: count }.' }),
  }),
});
