/**
 * One execution and one serialization per live event for every subscription
 * with the same operation and variables.
 *
 * The hub hands the same event object to every subscriber, and the streams
 * pass it on unchanged (subscriptions.ts), after each subscriber's own access
 * check and filter. A subscription's selection is then executed against that
 * event; when every field selected is the same for every viewer (marked with
 * SAME_FOR_EVERY_VIEWER where it is defined), the first subscriber's execution
 * is the result for all of them, looked up by the event object.
 *
 * Results with errors still go through each subscriber's own error handling
 * (useServiceErrors makes a new result then), so only error-free results keep
 * their identity up to the transport, and only those are serialized once
 * (sharedJson).
 */
import {
  createSourceEventStream,
  execute,
  GraphQLSchema,
  print,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  BREAK,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
// graphql's own subscribe() maps the source stream with this; it is what we do too, with a lookup in between.
import { mapAsyncIterator } from 'graphql/execution/mapAsyncIterator.js';
import { LiveStream, type Update } from './live-stream.js';

/** A field extension: true when the field's value depends only on the live update, never on who reads it. */
export const SAME_FOR_EVERY_VIEWER = 'sameForEveryViewer';

/** Counters for tests and diagnostics: selections executed per event, served from another subscriber's execution, serialized, and sent as a frame directly. */
export const sharedResultStats = { executed: 0, reused: 0, serialized: 0, sentDirectly: 0 };

/**
 * What a transport that can write a shared result's JSON itself puts in the
 * operation's context (the WebSocket transport: a `next` frame around it).
 * `written` is called once it is written, or the connection failed.
 */
export type SharedResultWriter = { writeSharedResult(json: string, written: () => void): void };

type PromiseOrValue<T> = T | Promise<T>;

// Per document: its text when every field it selects is the same for every viewer, null otherwise.
const shareableText = new WeakMap<DocumentNode, string | null>();
// Per event: the result of each (document, operation, variables) executed on it.
const resultsByEvent = new WeakMap<object, Map<string, PromiseOrValue<ExecutionResult>>>();
// Shared results (error-free, the same object for every subscriber) and their JSON once made.
const jsonOfShared = new WeakMap<ExecutionResult, string | null>();

function documentShareKey(schema: GraphQLSchema, document: DocumentNode): string | null {
  let text = shareableText.get(document);
  if (text !== undefined) return text;
  const typeInfo = new TypeInfo(schema);
  const subscriptionType = schema.getSubscriptionType();
  let shareable = true;
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        if (node.name.value === '__typename' || typeInfo.getParentType() === subscriptionType) return undefined;
        if (typeInfo.getFieldDef()?.extensions[SAME_FOR_EVERY_VIEWER] === true) return undefined;
        shareable = false;
        return BREAK;
      },
    }),
  );
  text = shareable ? (document.loc?.source.body ?? print(document)) : null;
  shareableText.set(document, text);
  return text;
}

/** The share key of a subscription (null: each subscriber executes its own). */
function shareKey(args: ExecutionArgs): string | null {
  const text = documentShareKey(args.schema, args.document);
  if (text === null) return null;
  return `${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? {})}\u0000${text}`;
}

function run(args: ExecutionArgs, update: Update): PromiseOrValue<ExecutionResult> {
  sharedResultStats.executed++;
  return execute({ ...args, rootValue: update });
}

// An error-free result keeps its identity up to the transport: it is the one serialized once.
function markShared(result: ExecutionResult): ExecutionResult {
  if (!result.errors) jsonOfShared.set(result, null);
  return result;
}

// Called once per subscriber per event: no closure made here.
function executeOnce(args: ExecutionArgs, update: Update, key: string | null): PromiseOrValue<ExecutionResult> {
  // Snapshots and replayed events are each subscriber's own; only a live event object is shared.
  if (key === null || update.kind !== 'event') return run(args, update);
  let results = resultsByEvent.get(update.event);
  if (!results) resultsByEvent.set(update.event, (results = new Map()));
  const known = results.get(key);
  if (known) {
    sharedResultStats.reused++;
    return known;
  }
  const result = run(args, update);
  const shared = result instanceof Promise ? result.then(markShared) : markShared(result);
  results.set(key, shared);
  return shared;
}

/**
 * graphql's subscribe(), executing each event's selection once for all
 * subscriptions with the same share key.
 */
export async function subscribeSharingResults(
  args: ExecutionArgs,
): Promise<AsyncGenerator<ExecutionResult, void, void> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  // An ExecutionResult here is the subscription's failure (access refused, bad input).
  if (!(Symbol.asyncIterator in stream)) return stream;
  const key = shareKey(args);
  const writer = args.contextValue as Partial<SharedResultWriter> | undefined;
  if (key !== null && writer?.writeSharedResult && stream instanceof LiveStream) {
    // A live event's shared result goes from here to the connection: none of the per-subscription iterators below see it.
    const { writeSharedResult } = writer;
    stream.sendDirectly((update, written) => {
      if (update.kind !== 'event') return false;
      const result = executeOnce(args, update, key);
      const json = result instanceof Promise ? undefined : sharedJson(result);
      if (json === undefined) return false;
      sharedResultStats.sentDirectly++;
      writeSharedResult(json, written);
      return true;
    });
  }
  return mapAsyncIterator(stream as AsyncIterable<Update>, (update) => executeOnce(args, update, key));
}

/** The JSON of a result shared between subscribers, made once; undefined for any other result. */
export function sharedJson(result: unknown): string | undefined {
  const known = jsonOfShared.get(result as ExecutionResult);
  if (known === undefined) return undefined;
  if (known !== null) return known;
  sharedResultStats.serialized++;
  const json = JSON.stringify(result);
  jsonOfShared.set(result as ExecutionResult, json);
  return json;
}
