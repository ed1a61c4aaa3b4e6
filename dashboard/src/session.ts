/**
 * The page's one connection to the service: the typed client (client/), with
 * the token the viewer signed in with, and what the page does when the
 * service refuses that token (back to sign-in, saying why).
 */
import { TrackerError, createTrackerClient, type ConnectionState, type TrackerClient } from '../../client/index.js';

export type { ConnectionState, RequestUpdate, TrackerClient } from '../../client/index.js';

export type Session = {
  client: TrackerClient;
  /** Shows a failure on the page, or signs out when the token was refused. */
  report(error: unknown): string;
};

export function openSession(token: string, onStateChange: (state: ConnectionState) => void, signOut: (reason: string) => void): Session {
  const client = createTrackerClient({ url: `${location.origin}/graphql`, getToken: () => token, onStateChange });
  return {
    client,
    report(error) {
      if (error instanceof TrackerError && error.code === 'UNAUTHENTICATED') {
        signOut('The service refused your token (expired or not valid here): sign in again.');
      }
      return error instanceof Error ? error.message : String(error);
    },
  };
}
