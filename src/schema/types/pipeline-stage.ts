/** PipelineStage (one row of pipeline_stage_definitions), and the `pipelineStages` query that lists them. */
import { listPipelineStages, type PipelineStage } from '../../services/pipeline.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { RequestStatusEnum } from '../enums.js';

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

builder.queryFields((t) => ({
  pipelineStages: t.field({
    type: [PipelineStageRef],
    resolve: (_root, _args, ctx) => {
      requireViewer(ctx);
      return listPipelineStages(ctx.db);
    },
  }),
}));
