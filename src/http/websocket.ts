/**
 * GraphQL over WebSocket (the graphql-ws protocol) on /graphql, beside
 * yoga's HTTP and SSE. The token comes in `connection_init` as
 * `{ "authorization": "Bearer …" }`; operations run through yoga's envelop, so
 * they get the same context, limits and error handling as over HTTP. A socket
 * whose token expires is closed with 4403 Forbidden.
 */
import type { Server } from 'node:http';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { ExecutionArgs } from 'graphql';
import { WebSocketServer } from 'ws';
import type { Logger } from '../logger.js';
import type { Viewer } from '../services/viewer.js';
import type { Authenticator, GraphQLServer, SocketContext } from './graphql-server.js';

type ConnectionExtra = { viewer?: Viewer; expiryTimer?: NodeJS.Timeout };
type EnvelopedRoot = { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };

export type WebSocketTransport = { close(graceMs?: number): Promise<void> };

// setTimeout holds at most ~24.8 days.
const MAX_TIMER_MS = 2_147_483_647;

export function attachWebSocketTransport(options: {
  server: Server;
  graphql: GraphQLServer;
  authenticate: Authenticator;
  logger: Logger;
  keepAliveMs?: number;
}): WebSocketTransport {
  const { graphql, authenticate } = options;
  const logger = options.logger.child({ component: 'websocket' });
  const sockets = new WebSocketServer({ server: options.server, path: '/graphql' });
  // Operations running now; on close we let them complete (the client gets
  // `complete`, not a dropped socket) before the sockets go.
  let running = 0;
  let onIdle: (() => void) | undefined;

  const disposable = useServer<Record<string, unknown>, ConnectionExtra>(
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,

      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        if (typeof authorization !== 'string') return false; // 4403 Forbidden
        try {
          const { viewer, expiresAt } = await authenticate(authorization);
          ctx.extra.viewer = viewer;
          if (expiresAt) {
            const socket = ctx.extra.socket;
            ctx.extra.expiryTimer = setTimeout(
              () => socket.close(CloseCode.Forbidden, 'Forbidden: token expired'),
              Math.min(Math.max(expiresAt.getTime() - Date.now(), 0), MAX_TIMER_MS),
            );
          }
          return true;
        } catch (error) {
          logger.debug({ err: error }, 'websocket connection refused');
          return false;
        }
      },

      onClose: (ctx) => clearTimeout(ctx.extra.expiryTimer),

      // Called just before graphql-ws sends `complete`: let that go out first.
      onComplete: () => {
        running--;
        if (running === 0) setImmediate(() => onIdle?.());
      },

      onSubscribe: async (ctx, _id, payload) => {
        const socketContext: SocketContext = { socketViewer: ctx.extra.viewer! };
        const { schema, execute, subscribe, contextFactory, parse, validate } = graphql.getEnveloped({
          ...socketContext,
          params: payload,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error as never];
        }
        const errors = validate(schema, document);
        if (errors.length) return errors;
        running++;
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } satisfies EnvelopedRoot,
        };
      },
    },
    sockets,
    options.keepAliveMs ?? 12_000,
  );

  return {
    /** Call once the streams have been told to end: waits (briefly) for them to complete, then closes every socket. */
    async close(graceMs = 2_000) {
      if (running > 0) {
        await new Promise<void>((resolve) => {
          onIdle = resolve;
          setTimeout(resolve, graceMs).unref();
        });
      }
      await disposable.dispose();
      await new Promise<void>((resolve) => sockets.close(() => resolve()));
    },
  };
}
