/**
 * RequestStage (one stage of one request, as its worker reported it), and the
 * `reportStage` mutation the pipeline workers report through. ContentRequest
 * imports this file and this one imports it back: Pothos reads both refs only
 * inside field thunks, once the schema is built, so the cycle is safe.
 */
import { reportStage, type RequestStage } from '../../services/stages.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { StageStatusEnum } from '../enums.js';
import { ContentRequestRef } from './content-request.js';

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
    stalledAt: t.expose('stalledAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When this run of the stage was found stalled (past STALL_FACTOR times its expected duration); null once it moves again.',
    }),
    metadata: t.expose('metadata', { type: 'JSON' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const ReportStageInput = builder.inputType('ReportStageInput', {
  fields: (t) => ({
    requestId: t.id({ required: true }),
    stage: t.string({ required: true, description: 'A pipeline stage name (see pipelineStages).' }),
    status: t.field({ type: StageStatusEnum, required: true }),
    progress: t.int({ required: false, description: 'Progress within the stage, 0-100.' }),
    errorMessage: t.string({ required: false, description: 'With status FAILED; up to 2,000 characters.' }),
    metadata: t.field({ type: 'JSON', required: false, description: 'A JSON object merged into the stage’s metadata, up to 16 KB.' }),
  }),
});

builder.mutationFields((t) => ({
  reportStage: t.field({
    type: ContentRequestRef,
    nullable: true,
    description: 'For pipeline workers (and admins): a stage started, progressed, completed, failed or was skipped.',
    args: { input: t.arg({ type: ReportStageInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      reportStage(ctx.db, requireViewer(ctx), {
        ...input,
        requestId: String(input.requestId),
        metadata: input.metadata as Record<string, unknown> | null | undefined,
      }),
  }),
}));
