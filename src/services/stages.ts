/**
 * The worker protocol: a pipeline worker reports a stage's status and
 * progress; the database's triggers move the request, its progress and its
 * event log (drizzle/0002). This module checks the report and who sends it.
 */
import { asc, eq, inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Queryable } from '../db/client.js';
import { contentRequests, contentStageStatus, pipelineStageDefinitions, requestStages } from '../db/tables.js';
import { badInput, notFound, ServiceError } from './errors.js';
import { listPipelineStages, REPORT_REFUSING_STATUSES } from './pipeline.js';
import type { ContentRequest } from './requests.js';
import { inTransaction } from './transaction.js';
import { metadataObject, optionalText, parseInput, requiredText, uuid } from './validation.js';
import { assertCanReportStages, type Viewer } from './access.js';

export type RequestStage = typeof requestStages.$inferSelect;
export type StageStatus = (typeof contentStageStatus.enumValues)[number];

const reportInput = z.object({
  requestId: uuid,
  stage: requiredText(100),
  status: z.enum(contentStageStatus.enumValues),
  progress: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be between 0 and 100')
    .max(100, 'must be between 0 and 100')
    .nullish(),
  errorMessage: optionalText(2_000),
  metadata: metadataObject.nullish(),
});
export type ReportStageInput = z.input<typeof reportInput>;

export async function reportStage(
  db: Queryable,
  viewer: Viewer,
  input: ReportStageInput,
): Promise<ContentRequest> {
  assertCanReportStages(viewer);
  const report = parseInput(reportInput, input);
  const stages = await listPipelineStages(db);
  if (!stages.some((s) => s.stageName === report.stage)) {
    throw badInput('stage', `is not a pipeline stage; the stages are ${stages.map((s) => s.stageName).join(', ')}`);
  }

  return inTransaction(db, async (tx) => {
    // Lock the request before its stage, in the order the trigger does, so
    // concurrent reports on one request queue instead of deadlocking.
    const [request] = await tx
      .select({ status: contentRequests.status })
      .from(contentRequests)
      .where(eq(contentRequests.id, report.requestId))
      .for('no key update');
    if (!request) throw notFound('content request', report.requestId);
    if (REPORT_REFUSING_STATUSES.has(request.status)) {
      throw new ServiceError(
        'INVALID_TRANSITION',
        `content request ${report.requestId} is ${request.status}; no stage can be reported on it` +
          (request.status === 'failed' ? ' until it is retried' : ''),
      );
    }

    const errorMessage = report.status === 'failed' ? (report.errorMessage ?? `${report.stage} failed`) : null;
    await tx
      .insert(requestStages)
      .values({
        requestId: report.requestId,
        stageName: report.stage,
        status: report.status,
        progressPercentage: report.progress ?? 0,
        errorMessage,
        metadata: report.metadata ?? {},
      })
      .onConflictDoUpdate({
        target: [requestStages.requestId, requestStages.stageName],
        set: {
          status: report.status,
          // No progress in the report: keep the stage's own (the timing trigger restarts it at 0 on a restart).
          progressPercentage:
            report.progress ?? sql`${requestStages.progressPercentage}`,
          errorMessage,
          metadata: sql`${requestStages.metadata} || excluded.metadata`,
        },
      });

    const [updated] = await tx.select().from(contentRequests).where(eq(contentRequests.id, report.requestId));
    return updated!;
  });
}

/** Stages of many requests, in pipeline order: one query for a whole page. */
export async function stagesOfRequests(
  db: Queryable,
  requestIds: readonly string[],
): Promise<Map<string, RequestStage[]>> {
  const byRequest = new Map<string, RequestStage[]>(requestIds.map((id) => [id, []]));
  if (requestIds.length === 0) return byRequest;
  const rows = await db
    .select({ stage: requestStages })
    .from(requestStages)
    .innerJoin(pipelineStageDefinitions, eq(pipelineStageDefinitions.stageName, requestStages.stageName))
    .where(inArray(requestStages.requestId, [...requestIds]))
    .orderBy(asc(requestStages.requestId), asc(pipelineStageDefinitions.stageOrder));
  for (const { stage } of rows) byRequest.get(stage.requestId)?.push(stage);
  return byRequest;
}
