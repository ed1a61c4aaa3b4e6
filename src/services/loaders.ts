/**
 * Per-GraphQL-request batching (DataLoader): a page of 20 requests with their
 * stages, events, students and organizations costs one query per kind, not
 * one per request.
 */
import DataLoader from 'dataloader';
import type { Queryable } from '../db/client.js';
import { estimateCompletion, hasEta, type Eta } from './eta.js';
import { eventPagesOfRequests, type EventPage } from './events.js';
import type { RequestStatus } from './pipeline.js';
import { stagesOfRequests, type RequestStage } from './stages.js';
import { organizationsByIds, usersByIds, type Organization, type User } from './users.js';

/** A request as of a read or a live update: its stages are read with the batch. */
export type EtaKey = { id: string; status: RequestStatus; organizationId: string | null };

export type EventPageKey = { requestId: string; first: number; afterSequence: number };

export type Loaders = ReturnType<typeof createLoaders>;

export function createLoaders(db: Queryable) {
  return {
    stagesByRequest: new DataLoader<string, RequestStage[]>(async (ids) => {
      const byRequest = await stagesOfRequests(db, ids);
      return ids.map((id) => byRequest.get(id) ?? []);
    }),

    // Requests asking for the same page shape share one query.
    eventPages: new DataLoader<EventPageKey, EventPage, string>(
      async (keys) => {
        const results = new Map<string, EventPage>();
        const byShape = new Map<string, EventPageKey[]>();
        for (const key of keys) {
          const shape = `${key.first}:${key.afterSequence}`;
          byShape.set(shape, [...(byShape.get(shape) ?? []), key]);
        }
        for (const group of byShape.values()) {
          const { first, afterSequence } = group[0]!;
          const pages = await eventPagesOfRequests(db, group.map((key) => key.requestId), { first, afterSequence });
          for (const [requestId, page] of pages) results.set(`${requestId}:${first}:${afterSequence}`, page);
        }
        return keys.map((key) => results.get(`${key.requestId}:${key.first}:${key.afterSequence}`)!);
      },
      { cacheKeyFn: (key) => `${key.requestId}:${key.first}:${key.afterSequence}` },
    ),

    // Batched, never cached: a subscription keeps its loaders for its whole life,
    // and each of its messages needs the stages as they are then.
    etas: new DataLoader<EtaKey, Eta | null, string>(
      async (keys) => {
        const now = new Date();
        const running = keys.filter((key) => hasEta(key.status)).map((key) => key.id);
        const stages = await stagesOfRequests(db, [...new Set(running)]);
        return Promise.all(keys.map((key) => estimateCompletion(db, { ...key, stages: stages.get(key.id) ?? [] }, now)));
      },
      { cache: false },
    ),

    users: new DataLoader<string, User | null>(async (ids) => {
      const rows = new Map((await usersByIds(db, ids)).map((user) => [user.userId, user]));
      return ids.map((id) => rows.get(id) ?? null);
    }),

    organizations: new DataLoader<string, Organization | null>(async (ids) => {
      const rows = new Map((await organizationsByIds(db, ids)).map((org) => [org.organizationId, org]));
      return ids.map((id) => rows.get(id) ?? null);
    }),
  };
}
