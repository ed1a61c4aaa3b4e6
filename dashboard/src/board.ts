/**
 * The overview's requests as plain data, and how one live update changes
 * them: pure functions, so the page only stores what they return.
 */
import type { RequestUpdate } from './session.js';

export type Row = {
  id: string;
  topic?: string;
  studentName?: string | null;
  status: string;
  stage: string | null;
  progress: number;
  stageStartedAt?: string | null;
  /** When the service expects the request to be done; null or unknown: no estimate. */
  readyAt?: string | null;
};

/** Requests in flight by id, and the most recently finished first. */
export type Board = { active: Map<string, Row>; finished: Row[] };

const RECENTLY_FINISHED = 20;

/** A request completed or cancelled leaves for "recently finished"; a failed one for the failures list. */
export const LEAVES_ACTIVE = new Set(['COMPLETED', 'CANCELLED', 'FAILED']);

export function applyUpdate(board: Board, update: RequestUpdate): Board {
  const active = new Map(board.active);
  const row = active.get(update.requestId);
  if (LEAVES_ACTIVE.has(update.status)) {
    if (!row) return board;
    active.delete(update.requestId);
    if (update.status === 'FAILED') return { ...board, active };
    const done = { ...row, status: update.status, progress: update.progressPercentage };
    return { active, finished: [done, ...board.finished].slice(0, RECENTLY_FINISHED) };
  }
  const startedNow = update.event?.eventType === 'STAGE_STARTED' ? update.event.createdAt : undefined;
  active.set(update.requestId, {
    ...row,
    id: update.requestId,
    status: update.status,
    stage: update.stage,
    progress: update.progressPercentage,
    stageStartedAt: startedNow ?? (row?.stage === update.stage ? row?.stageStartedAt : undefined),
    readyAt: update.estimatedCompletionAt === undefined ? row?.readyAt : update.estimatedCompletionAt,
  });
  return { ...board, active };
}

/** Fills in what the feed does not carry, for a row still active. */
export function describeRow(board: Board, id: string, details: Pick<Row, 'topic' | 'studentName' | 'readyAt'> & { stageStartedAt?: (stage: string | null) => string | null | undefined }): Board {
  const row = board.active.get(id);
  if (!row) return board;
  const described = {
    ...row,
    topic: details.topic,
    studentName: details.studentName,
    stageStartedAt: row.stageStartedAt ?? details.stageStartedAt?.(row.stage),
    readyAt: row.readyAt === undefined ? details.readyAt : row.readyAt,
  };
  return { ...board, active: new Map(board.active).set(id, described) };
}
