/**
 * The operations most tests start from, sent as a client sends them: submit
 * a request, report a stage, drive a request through every stage. They work
 * against the app under test and against a service process alike (both are
 * a URL), and fail the test on any GraphQL error.
 */
import type { Db } from '../../src/db/client.js';
import { reportStage as reportStageInService, type StageStatus } from '../../src/services/stages.js';
import { STAGES } from './app.js';
import { graphqlAt } from './service-process.js';

/** The database's stage statuses (lower case), for reportStageIn. */
export type { StageStatus };

/** Where to send, and as whom. */
export type Client = { url: string; token: string };

const SUBMIT_REQUEST = `mutation ($input: SubmitContentRequestInput!) {
  submitContentRequest(input: $input) { created request { id status studentId organizationId correlationId progressPercentage } }
}`;

const REPORT_STAGE = `mutation ($input: ReportStageInput!) {
  reportStage(input: $input) { id status currentStage progressPercentage errorStage errorMessage completedAt failedAt }
}`;

export type SubmittedRequest = {
  id: string;
  status: string;
  studentId: string;
  organizationId: string | null;
  correlationId: string;
  progressPercentage: number;
};

export type ReportedRequest = {
  id: string;
  status: string;
  currentStage: string | null;
  progressPercentage: number;
  errorStage: string | null;
  errorMessage: string | null;
  completedAt: string | null;
  failedAt: string | null;
};

export type StageReportStatus = 'PENDING' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'SKIPPED';

let submitted = 0;

/**
 * Submits a request (a fresh correlation id unless `input` names one) and
 * returns it as the mutation does, with whether this call created it.
 */
export async function submitRequest(client: Client, input: Record<string, unknown> = {}): Promise<SubmittedRequest & { created: boolean }> {
  const data = await graphqlAt(client.url, client.token, SUBMIT_REQUEST, {
    input: { correlationId: `submitted-${process.pid}-${++submitted}`, topic: 'Tides', studentQuery: 'Why are there two tides a day?', ...input },
  });
  const { created, request } = data.submitContentRequest as { created: boolean; request: SubmittedRequest };
  return { ...request, created };
}

/** A worker's stage report; `extra` carries errorMessage or metadata. */
export async function reportStage(
  client: Client,
  requestId: string,
  stage: string,
  status: StageReportStatus,
  progress?: number,
  extra: { errorMessage?: string; metadata?: Record<string, unknown> } = {},
): Promise<ReportedRequest> {
  const data = await graphqlAt(client.url, client.token, REPORT_STAGE, {
    input: { requestId, stage, status, ...(progress === undefined ? {} : { progress }), ...extra },
  });
  return data.reportStage as ReportedRequest;
}

/**
 * Reports each stage started, then at each of `progressSteps`, then
 * completed, in pipeline order from `from` (the first by default): the
 * request ends completed.
 */
export async function driveToCompletion(
  client: Client,
  requestId: string,
  options: { from?: string; progressSteps?: number[] } = {},
): Promise<ReportedRequest> {
  let last: ReportedRequest | undefined;
  for (const stage of STAGES.slice(stageIndex(options.from ?? STAGES[0]))) {
    await reportStage(client, requestId, stage, 'IN_PROGRESS');
    for (const progress of options.progressSteps ?? []) await reportStage(client, requestId, stage, 'IN_PROGRESS', progress);
    last = await reportStage(client, requestId, stage, 'COMPLETED');
  }
  return last!;
}

/** Starts and completes every stage before `stage`, then starts it. */
export async function driveTo(client: Client, requestId: string, stage: string): Promise<ReportedRequest> {
  for (const done of STAGES.slice(0, stageIndex(stage))) {
    await reportStage(client, requestId, done, 'IN_PROGRESS');
    await reportStage(client, requestId, done, 'COMPLETED');
  }
  return reportStage(client, requestId, stage, 'IN_PROGRESS');
}

function stageIndex(stage: string): number {
  const index = (STAGES as readonly string[]).indexOf(stage);
  if (index < 0) throw new Error(`not a pipeline stage: ${stage}`);
  return index;
}

/** A pipeline worker, as the service sees one. */
const WORKER: Parameters<typeof reportStageInService>[1] = { userId: 'test-worker', role: 'worker', organizationId: null };

/**
 * The service's stage report on a database, for tests without a server: the
 * same checks and the same upsert a worker's reportStage mutation runs.
 */
export async function reportStageIn(
  db: Db,
  requestId: string,
  stage: string,
  status: StageStatus,
  progress?: number,
  errorMessage?: string,
): Promise<void> {
  await reportStageInService(db, WORKER, { requestId, stage, status, progress, errorMessage });
}
