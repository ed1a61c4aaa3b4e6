/** The GraphQL context, and the checks resolvers make on it (signed in, forward paging). */
import type { Queryable } from '../db/client.js';
import type { LiveDependencies } from '../live/subscriptions.js';
import { badInput, ServiceError } from '../services/errors.js';
import { createLoaders, type Loaders } from '../services/loaders.js';
import type { Viewer } from '../services/access.js';

/** What every resolver gets; built once per GraphQL operation. */
export type GraphQLContext = {
  /** Echoed in the `x-request-id` response header and in every log line. */
  requestId: string;
  /** Null without a bearer token: only the schema itself is readable then. */
  viewer: Viewer | null;
  /** When the viewer's token expires (null: no token, or no expiry): live streams end then. */
  viewerExpiresAt: Date | null;
  db: Queryable;
  loaders: Loaders;
  /** Aborted when the client's HTTP connection goes (absent over WebSocket, whose transport ends its streams itself). */
  hangUp?: AbortSignal;
  /** The hub and shutdown signal the subscriptions run on. */
  live: LiveDependencies;
};

/**
 * The loaders, made on first use: a subscription's context lives as long as
 * it does, and most never touch them. The laziness sits in this object, not
 * in a getter on the context, because envelop copies the context's
 * properties (Object.assign), which would call such a getter at once.
 */
export class LazyLoaders implements Loaders {
  private made: Loaders | undefined;
  constructor(private readonly db: Queryable) {}
  private get all(): Loaders {
    return (this.made ??= createLoaders(this.db));
  }
  get stagesByRequest() {
    return this.all.stagesByRequest;
  }
  get eventPages() {
    return this.all.eventPages;
  }
  get etas() {
    return this.all.etas;
  }
  get users() {
    return this.all.users;
  }
  get organizations() {
    return this.all.organizations;
  }
}

export function requireViewer(context: GraphQLContext): Viewer {
  if (!context.viewer) {
    throw new ServiceError('UNAUTHENTICATED', 'sign in: send an Authorization: Bearer <token> header');
  }
  return context.viewer;
}

/** Our connections page forward only (keyset on first/after); Relay's last/before are refused. */
export function requireForwardPaging(args: { last?: number | null; before?: string | null }, what: string): void {
  if (args.last != null || args.before != null) throw badInput('last', `${what} page forward only: use first and after`);
}
