import { cancelRequest, retryRequest, submitRequest } from '../services/requests.js';
import { reportStage } from '../services/stages.js';
import { builder } from './builder.js';
import { requireViewer } from './context.js';
import { StageStatusEnum } from './enums.js';
import { ContentRequestRef } from './objects.js';

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
