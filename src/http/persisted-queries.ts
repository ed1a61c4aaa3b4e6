/**
 * Automatic persisted queries (graphql-yoga's APQ plugin): a client on a slow
 * network sends a document's SHA-256 hash instead of the document, and the
 * document once, the first time the hash is unknown here. Anyone may register
 * a document (before authentication, before the document limits), so the
 * store is bounded in both count and size: at most PERSISTED_QUERIES.max
 * documents of at most PERSISTED_QUERIES.maxChars characters each, the least
 * recently used dropped first. A longer document still runs; it is only not
 * kept, and its client sends it whole again.
 */
import { createInMemoryAPQStore, useAPQ, type APQStore } from '@graphql-yoga/plugin-apq';
import type { Plugin } from 'graphql-yoga';

export const PERSISTED_QUERIES = { max: 1_000, maxChars: 16 * 1024, ttlMs: 24 * 3_600_000 };

export function usePersistedQueries(): Plugin {
  // The plugin's default keeps 1,000 documents for 36 s (its ttl is in milliseconds).
  const lru = createInMemoryAPQStore({ max: PERSISTED_QUERIES.max, ttl: PERSISTED_QUERIES.ttlMs });
  const store: APQStore = {
    get: (hash) => lru.get(hash),
    set: (hash, query) => (query.length <= PERSISTED_QUERIES.maxChars ? lru.set(hash, query) : undefined),
  };
  return useAPQ({ store });
}
