/**
 * The worker protocol: a pipeline worker reports a stage's status and
 * progress; the database's triggers move the request, its progress and its
 * event log (drizzle/0002). This module checks the report and who sends it.
 */
import { asc, eq, getTableColumns, inArray, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import { nameForStatement, type Queryable } from '../db/client.js';
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
    // One round trip (drizzle/0014's report_stage, its own transaction): the
    // request locked before its stage, a request the report may not touch
    // skipped, the stage upserted (the triggers move the request and log the
    // event), and the request read back as the triggers left it.
    const [reported] = await withRetries(() =>
      reportOnce(db).execute({
        requestId: report.requestId,
        stage: report.stage,
        status: report.status,
        progress: report.progress ?? null,
        errorMessage,
        metadata: JSON.stringify(report.metadata ?? {}),
      }),
    );
    if (reported) return reported;
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
}

// The function's row, each column decoded as a select of content_requests decodes it
// (Drizzle checks a table's own columns against the FROM, which here is the function).
const tableColumns = getTableColumns(contentRequests);
const reportedRequest = Object.fromEntries(
  Object.entries(tableColumns).map(([key, column]) => [key, sql`${sql.identifier(column.name)}`.mapWith(column)]),
) as { [K in keyof typeof tableColumns]: SQL<ContentRequest[K]> };

// Built once (prepared.ts), as every report runs it.
const reportOnce = preparedPerDatabase((db) =>
  db
    .select(reportedRequest)
    .from(
      sql`report_stage(${sql.placeholder('requestId')}::uuid, ${sql.placeholder('stage')}::varchar,
        ${sql.placeholder('status')}::content_stage_status, ${sql.placeholder('progress')}::int,
        ${sql.placeholder('errorMessage')}::text, ${sql.placeholder('metadata')}::jsonb,
        array[${sql.join([...REPORT_REFUSING_STATUSES].map((status) => sql`${status}`), sql`, `)}]::content_request_status[])`,
    )
    .prepare(nameForStatement(db)),
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
