/** The pipeline's stages (seeded by a migration, tunable by operators). */
import { asc } from 'drizzle-orm';
import type { Queryable } from '../db/client.js';
import { pipelineStageDefinitions } from '../db/tables.js';

export type PipelineStage = typeof pipelineStageDefinitions.$inferSelect;

// Five rows that change only by an operator's hand: a short-lived cache keeps
// them off every stage report without making an edit wait for a restart.
const CACHE_TTL_MS = 30_000;
const cache = new WeakMap<Queryable, { loadedAt: number; stages: Promise<PipelineStage[]> }>();

export function listPipelineStages(db: Queryable): Promise<PipelineStage[]> {
  const cached = cache.get(db);
  if (cached && Date.now() - cached.loadedAt < CACHE_TTL_MS) return cached.stages;
  const stages = db
    .select()
    .from(pipelineStageDefinitions)
    .orderBy(asc(pipelineStageDefinitions.stageOrder));
  const entry = { loadedAt: Date.now(), stages: Promise.resolve(stages) };
  cache.set(db, entry);
  entry.stages.catch(() => cache.delete(db));
  return entry.stages;
}
