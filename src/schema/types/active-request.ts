/** ActiveRequest (one row of the active_requests_dashboard view), and the `activeRequests` query. */
import { listActiveRequests, type ActiveRequest } from '../../services/monitoring.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { RequestStatusEnum, StageStatusEnum } from '../enums.js';

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

builder.queryFields((t) => ({
  activeRequests: t.field({
    type: [ActiveRequestRef],
    description: 'Requests in flight, overdue ones first.',
    args: {
      overdueOnly: t.arg.boolean({ required: false }),
      first: t.arg.int({ required: false, description: 'At most 1000; 100 by default.' }),
    },
    resolve: (_root, args, ctx) => listActiveRequests(ctx.db, requireViewer(ctx), args),
  }),
}));
