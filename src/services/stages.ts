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
import { preparedPerDatabase } from './prepared.js';
import { withRetries } from './transaction.js';
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

  const errorMessage = report.status === 'failed' ? (report.errorMessage ?? `${report.stage} failed`) : null;
  for (let attempt = 1; ; attempt++) {
    // One statement (one round trip, its own transaction): lock the request
    // before its stage, in the order the trigger does, so concurrent reports
    // on one request queue instead of deadlocking; skip a request the report
    // may not touch (checked again on the row as it is once the lock is ours);
    // upsert the stage. The triggers move the request and log the event.
    const reported = await withRetries(async () =>
      // Both drivers answer with { rows }; Queryable's type cannot say which.
      (await db.execute(sql`
        insert into request_stages (request_id, stage_name, status, progress_percentage, error_message, metadata)
        select r.id, ${report.stage}::varchar, ${report.status}::content_stage_status, ${report.progress ?? 0}::int,
               ${errorMessage}::text, ${JSON.stringify(report.metadata ?? {})}::jsonb
          from content_requests r
         where r.id = ${report.requestId}::uuid
           and r.status not in (${sql.join([...REPORT_REFUSING_STATUSES].map((status) => sql`${status}`), sql`, `)})
           for no key update of r
        on conflict (request_id, stage_name) do update set
          status = excluded.status,
          -- No progress in the report: keep the stage's own (the timing trigger restarts it at 0 on a restart).
          progress_percentage = coalesce(${report.progress ?? null}::int, request_stages.progress_percentage),
          error_message = excluded.error_message,
          metadata = request_stages.metadata || excluded.metadata
        returning request_id`)) as { rows: { request_id: string }[] },
    );
    if (reported.rows.length > 0) break;
    // Nothing written: say why (rarely, a retry of the request came in between: then report again).
    const [request] = await db.select({ status: contentRequests.status }).from(contentRequests).where(eq(contentRequests.id, report.requestId));
    if (!request) throw notFound('content request', report.requestId);
    if (REPORT_REFUSING_STATUSES.has(request.status) || attempt === 3) {
      throw new ServiceError(
        'INVALID_TRANSITION',
        `content request ${report.requestId} is ${request.status}; no stage can be reported on it` +
          (request.status === 'failed' ? ' until it is retried' : ''),
      );
    }
  }
  // The request once the report has committed (a later report may already show in it).
  const [updated] = await requestById(db).execute({ id: report.requestId });
  return updated!;
}

const requestById = preparedPerDatabase((db) =>
  db.select().from(contentRequests).where(eq(contentRequests.id, sql.placeholder('id'))).prepare(''),
);

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
