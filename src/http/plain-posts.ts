/**
 * The common request, `POST /graphql` with a JSON body holding one query or
 * mutation, answered without @whatwg-node's Fetch-API adapter: building a
 * Request around the socket, streaming its body through web streams and a
 * Response back out was about 40% of the service's CPU per request.
 *
 * Everything else runs as yoga runs it: its plugins' request and response
 * hooks (request ids, security headers, CORS, metrics), its operation path
 * (`getResultForParams`: persisted-query lookups, parse and validation
 * caches, the document limits, the context with authentication, masked and
 * coded errors, mutation budgets) and its own JSON result processor (the
 * status codes and content types of GraphQL over HTTP). What this file
 * decides is only which requests are plain: any other (GET, SSE, multipart,
 * batched, persisted, a body that is not a JSON object of `query`,
 * `variables`, `operationName`, a subscription, an Accept header other than
 * plain JSON) goes to yoga untouched, its body handed over if already read.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { processRegularResult, type GraphQLParams, type Plugin } from 'graphql-yoga';
import type { ExecutionResult } from 'graphql';
import type { Logger } from '../logger.js';
import { maskError, unexpected } from './error-responses.js';
import { mayBeSubscription, type GraphQLServer } from './graphql-server.js';
import type { Metrics } from './metrics.js';
import { rememberLast } from './remember-last.js';
import type { RequestHandler } from './requests-in-flight.js';

type Params = { query: string; variables?: Record<string, unknown> | null; operationName?: string | null };

/**
 * The JSON media type yoga's result processor picks for an Accept header,
 * when that is all the header allows: the first JSON type listed (`*\/*` is
 * application/json). Undefined for anything else (event streams, multipart,
 * other charsets, wildcards by type): yoga decides those.
 */
export function plainJsonMediaType(accept: string | undefined): string | undefined {
  let chosen: string | undefined;
  for (const entry of (accept ?? '*/*').replace(/\s/g, '').toLowerCase().split(',')) {
    const [mediaType, ...parameters] = entry.split(';');
    if (parameters.some((parameter) => parameter.startsWith('charset=') && parameter !== 'charset=utf-8')) return undefined;
    if (mediaType !== 'application/json' && mediaType !== 'application/graphql-response+json' && mediaType !== '*/*') return undefined;
    chosen ??= mediaType === '*/*' ? 'application/json' : mediaType;
  }
  return chosen;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The body as one plain operation's parameters, or undefined when yoga should read it. */
export function plainParams(body: unknown): Params | undefined {
  if (!isPlainObject(body)) return undefined;
  for (const key in body) if (key !== 'query' && key !== 'variables' && key !== 'operationName') return undefined;
  const { query, variables, operationName } = body;
  if (typeof query !== 'string') return undefined;
  if (variables != null && !isPlainObject(variables)) return undefined;
  if (operationName != null && typeof operationName !== 'string') return undefined;
  // Subscriptions stream (SSE) or are refused per Accept: yoga's.
  if (mayBeSubscription(query)) return undefined;
  return { query, variables, operationName };
}

/**
 * What the plugins' hooks see of the request: its method, URL and headers (and
 * a signal, for a hang-up, made only when read: only a subscription's stream
 * reads it). A class: a getter defined on a literal per request showed in the
 * profile.
 */
class PlainRequest {
  readonly method = 'POST';
  readonly url: string;
  readonly headers: Headers;
  private hangUp: AbortController | undefined;
  constructor(
    graphql: GraphQLServer,
    request: IncomingMessage,
    private readonly response: ServerResponse,
  ) {
    this.url = `http://${request.headers.host ?? 'localhost'}${request.url}`;
    this.headers = new graphql.fetchAPI.Headers(request.headers as Record<string, string>);
  }
  get signal(): AbortSignal {
    if (!this.hangUp) {
      const controller = (this.hangUp = new AbortController());
      this.response.once('close', () => this.response.writableFinished || controller.abort());
    }
    return this.hangUp.signal;
  }
}

/** The result processor's Response, kept as its parts: the body stays a string, written once. */
class PlainResponse {
  readonly headers: Headers;
  readonly status: number;
  constructor(
    graphql: GraphQLServer,
    readonly body: string,
    init: { status?: number; headers?: Record<string, string> },
  ) {
    this.status = init.status ?? 200;
    this.headers = new graphql.fetchAPI.Headers(init.headers);
  }
}

type HookState = { early: PlainResponse | undefined; processed: PlainResponse | undefined };

const ignore = () => undefined;

function endResponse(this: HookState, given: Response) {
  this.early = given as unknown as PlainResponse;
}

function setResponse(this: HookState, given: Response) {
  this.processed = given as unknown as PlainResponse;
}

/** One payload per request for every onRequest hook (not one per hook). */
class RequestHookPayload {
  readonly requestHandler = undefined;
  readonly setRequest = ignore;
  readonly setRequestHandler = ignore;
  readonly endResponse: (response: Response) => void;
  constructor(
    readonly request: PlainRequest,
    readonly url: URL,
    readonly fetchAPI: GraphQLServer['fetchAPI'],
    readonly serverContext: Record<string, unknown>,
    state: HookState,
  ) {
    this.endResponse = endResponse.bind(state);
  }
}

/** The payload of every onResponse hook: the response as the hooks before left it. */
class ResponseHookPayload {
  readonly setResponse: (response: Response) => void;
  constructor(
    readonly request: PlainRequest,
    readonly serverContext: Record<string, unknown>,
    readonly fetchAPI: GraphQLServer['fetchAPI'],
    private readonly state: HookState,
  ) {
    this.setResponse = setResponse.bind(state);
  }
  get response(): PlainResponse | undefined {
    return this.state.processed;
  }
}

export function servePlainPosts(graphql: GraphQLServer, options: { logger: Logger; metrics: Metrics }, next: RequestHandler): RequestHandler {
  const { logger, metrics } = options;
  // Every plugin, nested ones included: the list yoga hands its own Node adapter (createYoga reads it the same way).
  const plugins = (graphql as unknown as { plugins: (Plugin | false | undefined)[] }).plugins.filter((plugin): plugin is Plugin => Boolean(plugin));
  const onRequest = plugins.flatMap((plugin) => (plugin.onRequest ? [plugin.onRequest.bind(plugin)] : []));
  const onResponse = plugins.flatMap((plugin) => (plugin.onResponse ? [plugin.onResponse.bind(plugin)] : []));
  const fetchAPI = graphql.fetchAPI;
  const resultFetchAPI = { Response: PlainResponse.bind(undefined, graphql) } as unknown as typeof fetchAPI;
  const masked = maskError(logger);
  // The hooks' URL object, one per Host: every request here is to /graphql, yoga's hooks destructure
  // the URL (so reading it lazily would not spare it), and parsing it per request showed in the
  // profile. The hooks only read it.
  const urlOf = rememberLast((href) => new fetchAPI.URL(href));
  // Clients send one Accept header request after request (absent, it is `*/*`).
  const mediaTypeOf = rememberLast(plainJsonMediaType);

  async function answer(request: IncomingMessage, response: ServerResponse, params: Params, mediaType: string): Promise<void> {
    metrics.countDirectRequest();
    const fetchRequest = new PlainRequest(graphql, request, response);
    const serverContext = { req: request, res: response } as Record<string, unknown>;
    const state: HookState = { early: undefined, processed: undefined };
    const requestPayload = new RequestHookPayload(fetchRequest, urlOf(fetchRequest.url), fetchAPI, serverContext, state);
    for (const hook of onRequest) {
      await hook(requestPayload as never);
      if (state.early) break;
    }
    const early = state.early;
    let result: ExecutionResult;
    try {
      result = early
        ? {}
        : ((await graphql.getResultForParams({ params: params as GraphQLParams, request: fetchRequest as unknown as Request }, serverContext)) as ExecutionResult);
    } catch (error) {
      result = { errors: [masked(error) as never] };
    }
    // Any early response is a Fetch Response of yoga's: write what it is.
    state.processed = early ?? (processRegularResult(result, resultFetchAPI, mediaType) as unknown as PlainResponse);
    const responsePayload = new ResponseHookPayload(fetchRequest, serverContext, fetchAPI, state);
    for (const hook of onResponse) await hook(responsePayload as never);
    const processed = state.processed!;
    const body = processed instanceof PlainResponse ? processed.body : await (processed as unknown as Response).text();
    const headers: Record<string, string> = {};
    processed.headers.forEach((value, key) => {
      headers[key] = value;
    });
    headers['content-length'] = String(Buffer.byteLength(body));
    response.writeHead(processed.status, headers);
    response.end(body);
  }

  // Returns the request's work (read, then answered or handed over) for the requests in flight.
  return (request, response) => {
    const mediaType =
      request.method === 'POST' && request.url === '/graphql' && /^application\/json\s*(;\s*charset=utf-8\s*)?$/i.test(request.headers['content-type'] ?? '')
        ? mediaTypeOf(request.headers.accept ?? '*/*')
        : undefined;
    if (!mediaType) return next(request, response);
    return readBody(request, response).then((body) => {
      if (!body) return; // a client gone mid-body: nothing to answer
      let params: Params | undefined;
      try {
        params = plainParams(JSON.parse(body.toString('utf8')));
      } catch {
        params = undefined; // not JSON: yoga's answer (a short BAD_REQUEST)
      }
      if (!params) {
        // Read already: yoga's Node adapter takes a body handed over this way.
        (request as IncomingMessage & { body?: Uint8Array }).body = body;
        return next(request, response);
      }
      // A hook that throws: logged once and masked, as yoga's adapter would answer it.
      return answer(request, response, params, mediaType).catch((error: unknown) => {
        if (response.headersSent) return void response.end();
        const body = JSON.stringify({ errors: [unexpected(error, undefined, logger)] });
        response.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'x-content-type-options': 'nosniff' }).end(body);
      });
    });
  };
}

/** The whole body, or undefined if the client went away before sending it. */
function readBody(request: IncomingMessage, response: ServerResponse): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    request.once('error', () => {
      response.destroy();
      resolve(undefined);
    });
    // After 'end' when the body came whole (resolved already), else the client hung up.
    request.once('close', () => resolve(undefined));
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
  });
}
