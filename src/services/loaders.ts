/**
 * Per-GraphQL-request batching (DataLoader): a page of 20 requests with their
 * stages, events, students and organizations costs one query per kind, not
 * one per request.
 */
import DataLoader from 'dataloader';
import type { Queryable } from '../db/client.js';
import { eventPagesOfRequests, type EventPage } from './events.js';
import { stagesOfRequests, type RequestStage } from './stages.js';
import { organizationsByIds, usersByIds, type Organization, type User } from './users.js';

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
