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
import type { ExecutionArgs, GraphQLError } from 'graphql';
import { WebSocket, WebSocketServer } from 'ws';
import { sharedJson, type SharedResultWriter } from '../live/shared-results.js';
import type { Logger } from '../logger.js';
import { ServiceError } from '../services/errors.js';
import type { Viewer } from '../services/access.js';
import type { GraphQLContext } from '../schema/context.js';
import { presentOutsideExecution, toCodedError } from './error-responses.js';
import { OutgoingFrames, type SocketFrames } from './outgoing-frames.js';
import type { Authenticator, GraphQLServer, SocketContext } from './graphql-server.js';

type ConnectionExtra = {
  viewer?: Viewer;
  expiresAt?: Date | null;
  expiryTimer?: NodeJS.Timeout;
  /** The connection's one writer of shared results, for all its operations. */
  writeSharedResult?: SharedResultWriter['writeSharedResult'];
  frames?: SocketFrames;
};
type EnvelopedRoot = { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };

export type WebSocketTransport = {
  /** Call once the streams have been told to end: waits (briefly) for them to complete, then closes every socket. */
  close(graceMs?: number): Promise<void>;
  /** Drops every socket at once (the shutdown grace period is over). */
  terminate(): void;
};

export type WebSocketLimits = {
  /** The largest frame read (ws's maxPayload); a larger one closes the socket with 1009. */
  maxPayloadBytes: number;
  keepAliveMs: number;
  maxSubscriptionsPerSocket: number;
};

// setTimeout holds at most ~24.8 days.
const MAX_TIMER_MS = 2_147_483_647;
// After a token expires its streams end with UNAUTHENTICATED; the socket closes this much later, so that error is sent first.
const EXPIRY_CLOSE_DELAY_MS = 1_000;
// A close frame's reason holds at most 123 bytes.
const closeReason = (reason: string) => Buffer.from(reason).subarray(0, 123).toString();

// A result shared by many subscribers is serialized once (live/shared-results.ts): onNext sends its
// `next` frame itself, around that JSON, and tells graphql-ws to send this stand-in, which the socket drops.
const SENT_MARK = '\u0000sent';
const ALREADY_SENT = { toJSON: () => SENT_MARK };
const ALREADY_SENT_FRAME_END = `"payload":${JSON.stringify(SENT_MARK)}}`;

/**
 * Every frame the socket sends goes through `frames` (outgoing-frames.ts):
 * graphql-ws's stand-in frames are dropped, the others go after what is held.
 */
function sendThrough(socket: WebSocket, frames: SocketFrames): void {
  socket.send = function send(this: WebSocket, data: unknown, ...rest: unknown[]) {
    // A real `next` payload is an object: only the stand-in ends with a string payload.
    if (typeof data === 'string' && data.endsWith(ALREADY_SENT_FRAME_END)) {
      (rest.at(-1) as ((error?: Error) => void) | undefined)?.();
      return;
    }
    frames.beforeSend();
    // Looked up on the prototype at each call: whoever wraps ws's send later (the benchmark) still sees every such frame.
    return (WebSocket.prototype.send as (...args: unknown[]) => void).call(this, data, ...rest);
  } as WebSocket['send'];
}

/**
 * Frames reach graphql-ws as text. Its handler of a `subscribe` frame runs as
 * long as the operation does and holds what it was given: ws's Buffer is a
 * slice of the socket's read chunk and would keep that chunk too.
 */
function receiveAsText(socket: WebSocket): void {
  const emit = socket.emit;
  socket.emit = function (this: WebSocket, event: string | symbol, ...args: unknown[]) {
    if (event === 'message' && Buffer.isBuffer(args[0])) args[0] = args[0].toString();
    return emit.call(this, event, ...args);
  };
}

/** The start of a `next` frame for operation `id`: a shared result's JSON and `}` complete it. */
const nextFrameStart = (id: string) => `{"id":${JSON.stringify(id)},"type":"next","payload":`;

const AUTHORIZATION_KEY = /^(authorization|authToken|authentication|token|accessToken)$/i;

/**
 * The token from `connection_init`'s payload, spelled as real clients send it:
 * `{ authorization: "Bearer …" }` (any case), Apollo's `{ authToken: "…" }`,
 * or a `headers` object holding an Authorization header. A bare token gets
 * its `Bearer ` prefix.
 */
export function authorizationFrom(params: unknown): string | undefined {
  const sources = [params, (params as { headers?: unknown } | null | undefined)?.headers];
  for (const source of sources) {
    if (!source || typeof source !== 'object') continue;
    for (const [key, value] of Object.entries(source)) {
      if (typeof value !== 'string' || !AUTHORIZATION_KEY.test(key)) continue;
      return /^bearer\s/i.test(value) ? value : `Bearer ${value}`;
    }
  }
  return undefined;
}

export function attachWebSocketTransport(options: {
  server: Server;
  graphql: GraphQLServer;
  authenticate: Authenticator;
  logger: Logger;
  limits: WebSocketLimits;
}): WebSocketTransport {
  const { graphql, authenticate, limits } = options;
  const logger = options.logger.child({ component: 'websocket' });
  // No compression: held frames are written beside ws's Sender (outgoing-frames.ts), which then never queues its own.
  const sockets = new WebSocketServer({ server: options.server, path: '/graphql', maxPayload: limits.maxPayloadBytes, perMessageDeflate: false });
  const outgoing = new OutgoingFrames();
  const framesOf = new WeakMap<WebSocket, SocketFrames>();
  sockets.on('connection', (socket) => {
    const frames = outgoing.attach(socket);
    framesOf.set(socket, frames);
    sendThrough(socket, frames);
    receiveAsText(socket);
  });
  // Operations running now; on close we let them complete (the client gets
  // `complete`, not a dropped socket) before the sockets go.
  let running = 0;
  let onIdle: (() => void) | undefined;
  // envelop hands every operation the same execute and subscribe (unless instrumented): one root for all while so.
  let root: EnvelopedRoot | undefined;

  /**
   * An operation that throws instead of returning a result (a plugin's
   * database call failing before execution, say) is answered as over HTTP:
   * that operation gets the coded or masked error, logged once with its
   * request id. Left to graphql-ws, the whole socket closed with 4500 and the
   * fault (its SQL and parameters) went to stderr.
   */
  async function answeringFaults(args: ExecutionArgs, run: keyof EnvelopedRoot): Promise<unknown> {
    try {
      return await (args.rootValue as EnvelopedRoot)[run](args);
    } catch (error) {
      return { errors: [presentOutsideExecution(error, (args.contextValue as GraphQLContext).requestId, logger)] };
    }
  }

  const disposable = useServer<Record<string, unknown>, ConnectionExtra>(
    {
      // A fault graphql-ws still catches closes the socket with a generic reason, never the fault's
      // message (under `npm start` or not: NODE_ENV is not read for this).
      isProd: true,
      execute: (args) => answeringFaults(args, 'execute') as never,
      subscribe: (args) => answeringFaults(args, 'subscribe') as never,

      onConnect: async (ctx) => {
        const socket = ctx.extra.socket;
        // Closed here with a reason saying why; graphql-ws's own close (on false) then finds it closing.
        const refuse = (reason: string) => {
          socket.close(CloseCode.Forbidden, closeReason(`Forbidden: ${reason}`));
          return false;
        };
        const authorization = authorizationFrom(ctx.connectionParams);
        if (!authorization) return refuse('connection_init has no token; send {"authorization": "Bearer <token>"}');
        try {
          const { viewer, expiresAt } = await authenticate(authorization);
          ctx.extra.viewer = viewer;
          ctx.extra.expiresAt = expiresAt;
          const frames = (ctx.extra.frames = framesOf.get(socket)!);
          ctx.extra.writeSharedResult = (id, json, written) => frames.writeNext(nextFrameStart(id), json, written);
          if (expiresAt) {
            ctx.extra.expiryTimer = setTimeout(
              () => socket.close(CloseCode.Forbidden, 'Forbidden: token expired'),
              Math.min(Math.max(expiresAt.getTime() - Date.now(), 0) + EXPIRY_CLOSE_DELAY_MS, MAX_TIMER_MS),
            );
          }
          return true;
        } catch (error) {
          if (error instanceof ServiceError) return refuse(error.message);
          logger.error({ err: error }, 'websocket authentication failed unexpectedly');
          socket.close(CloseCode.InternalServerError, 'Internal error: try again later');
          return false;
        }
      },

      onClose: (ctx) => clearTimeout(ctx.extra.expiryTimer),

      onNext: async (ctx, id, _payload, _args, result) => {
        const json = sharedJson(result);
        if (json === undefined) return undefined;
        // Resolved once written, as graphql-ws's own send: a slow reader holds its stream back.
        await new Promise<void>((resolve, reject) =>
          ctx.extra.frames!.writeNext(nextFrameStart(id), json, (error) => (error ? reject(error) : resolve())),
        );
        return ALREADY_SENT as never;
      },

      // Called just before graphql-ws sends `complete`: let that go out first.
      onComplete: () => {
        running--;
        if (running === 0) setImmediate(() => onIdle?.());
      },

      onSubscribe: async (ctx, id, payload) => {
        // This subscription is already counted in ctx.subscriptions.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerSocket) {
          return [
            toCodedError(
              new ServiceError(
                'RATE_LIMITED',
                `this connection has ${limits.maxSubscriptionsPerSocket} operations open, the most allowed: complete one first`,
                { limit: limits.maxSubscriptionsPerSocket },
              ),
            ),
          ] as GraphQLError[];
        }
        // One literal, not spreads: past a few hundred operations, spreading gave every context a hidden class
        // (map and descriptors, ~385 B) of its own, and an idle subscription keeps its context.
        const initialContext: SocketContext & SharedResultWriter & { params: typeof payload } = {
          socketViewer: ctx.extra.viewer!,
          socketExpiresAt: ctx.extra.expiresAt ?? null,
          // The connection's writer and this operation's id: nothing made per subscription.
          writeSharedResult: ctx.extra.writeSharedResult!,
          sharedResultId: id,
          params: payload,
        };
        const { schema, execute, subscribe, contextFactory, parse, validate } = graphql.getEnveloped(initialContext);
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error as never];
        }
        // graphql-ws keeps the payload as long as the operation runs: the parser's cached document
        // holds the same text already, and every subscriber with this document can keep that one.
        const text = document.loc?.source.body;
        if (text !== undefined && text === payload.query) (payload as { query: string }).query = text;
        const errors = validate(schema, document);
        if (errors.length) return errors;
        running++;
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: root?.execute === execute && root.subscribe === subscribe ? root : (root = { execute, subscribe }),
        };
      },
    },
    sockets,
    limits.keepAliveMs,
  );

  return {
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
    terminate() {
      for (const socket of sockets.clients) socket.terminate();
    },
  };
}
