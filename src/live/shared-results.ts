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
import { LiveStream, type DirectSender, type Update } from './live-stream.js';

/** A field extension: true when the field's value depends only on the live update, never on who reads it. */
export const SAME_FOR_EVERY_VIEWER = 'sameForEveryViewer';

/** Counters for tests and diagnostics: selections executed per event, served from another subscriber's execution, serialized, and sent as a frame directly. */
export const sharedResultStats = { executed: 0, reused: 0, serialized: 0, sentDirectly: 0 };

/**
 * What a transport that can write a shared result's JSON itself puts in the
 * operation's context (the WebSocket transport: a `next` frame around it, for
 * operation `sharedResultId`). One writer serves a whole connection; `written`
 * is called once it is written, or the connection failed.
 */
export type SharedResultWriter = {
  writeSharedResult(id: string, json: string, written: () => void): void;
  sharedResultId: string;
};

/**
 * Told once when a subscription is over: its stream finished, failed
 * (`failed` true) or was closed, or subscribing answered with a result and no
 * stream (access refused, bad input). `startedAt` is performance.now() when it
 * subscribed. One observer serves every subscription (the metrics'), so no
 * subscription keeps a wrapper of its stream just to learn when it ends.
 */
export type SubscriptionEnds = { ended(args: ExecutionArgs, startedAt: number, failed: boolean): void };

type PromiseOrValue<T> = T | Promise<T>;
/** How a selection is executed against an update (graphql's execute, or a compiled one). */
export type Execute = (args: ExecutionArgs) => PromiseOrValue<ExecutionResult>;

// Per document: its text when every field it selects is the same for every viewer, null otherwise.
const shareableText = new WeakMap<DocumentNode, string | null>();
// Kept on the objects themselves, not in WeakMaps: two or three WeakMap entries a change were
// a measurable part of the garbage collector's work. Symbols: invisible to JSON and to keys.
const RESULTS = Symbol('results by document text, then operation and variables');
const SHARED_JSON = Symbol('the JSON of a shared result: null until made');
// A live event, with the result of each (document text, operation and variables) executed on it.
type EventWithResults = { [RESULTS]?: Map<string, Map<string, PromiseOrValue<ExecutionResult>>> };
// A shared result (error-free, the same object for every subscriber), with its JSON once made.
type SharedResult = ExecutionResult & { [SHARED_JSON]?: string | null };

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

/**
 * A subscription's share key, after its document's text (the one string all
 * its subscribers share): its operation name and variables as one string
 * (concatenated, it would be a rope of a dozen pieces, kept by every idle subscription).
 */
const variablesKey = (args: ExecutionArgs): string => JSON.stringify([args.operationName ?? '', args.variableValues ?? {}]);

function run(args: ExecutionArgs, update: Update, execute: Execute): PromiseOrValue<ExecutionResult> {
  sharedResultStats.executed++;
  return execute({ ...args, rootValue: update });
}

// An error-free result keeps its identity up to the transport: it is the one serialized once.
function markShared(result: ExecutionResult): ExecutionResult {
  if (!result.errors) (result as SharedResult)[SHARED_JSON] = null;
  return result;
}

// Called once per subscriber per event: no closure made here. `text` null: not shared.
function executeOnce(
  args: ExecutionArgs,
  update: Update,
  text: string | null,
  variables: string,
  execute: Execute,
): PromiseOrValue<ExecutionResult> {
  // Snapshots and replayed events are each subscriber's own; only a live event object is shared.
  if (text === null || update.kind !== 'event') return run(args, update, execute);
  const event = update.event as EventWithResults;
  const byText = (event[RESULTS] ??= new Map());
  let results = byText.get(text);
  if (!results) byText.set(text, (results = new Map()));
  const known = results.get(variables);
  if (known) {
    sharedResultStats.reused++;
    return known;
  }
  const result = run(args, update, execute);
  const shared = result instanceof Promise ? result.then(markShared) : markShared(result);
  results.set(variables, shared);
  return shared;
}

/**
 * A subscription's results: each update of its source stream executed (once
 * for all subscriptions with its share key), as graphql's subscribe() maps
 * them (mapAsyncIterator: a mapping that fails closes the source). One object
 * with its state in fields, no closure or generator per subscription: most
 * are idle, and this is what each of them holds. It is also the stream's
 * direct sender when the transport writes shared results itself.
 */
class SharedResults implements AsyncIterableIterator<ExecutionResult>, DirectSender {
  /** The share key: the document's text (null: not shared), then the operation and variables. */
  private readonly text: string | null;
  private readonly variables: string;
  /** Who is told when this subscription is over; undefined once told. */
  private ends: SubscriptionEnds | undefined;

  constructor(
    private readonly source: AsyncIterator<Update>,
    private readonly args: ExecutionArgs,
    private readonly startedAt: number,
    ends: SubscriptionEnds | undefined,
    private readonly execute: Execute,
    private readonly writer?: SharedResultWriter,
  ) {
    this.ends = ends;
    this.text = documentShareKey(args.schema, args.document);
    this.variables = this.text === null ? '' : variablesKey(args);
  }

  /** Whether this subscription shares its executions with others of its key. */
  get shared(): boolean {
    return this.text !== null;
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    return this.source.next().then(
      (result) => this.map(result),
      (error: unknown) => {
        this.end(true);
        throw error;
      },
    );
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.end(false);
    if (typeof this.source.return !== 'function') return Promise.resolve({ value: undefined, done: true });
    return this.source.return().then((result) => this.map(result));
  }

  async throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    if (typeof this.source.throw === 'function') return this.map(await this.source.throw(error));
    await this.returnIgnoringErrors();
    throw error;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /** A live event's shared result goes from here to the connection: the iterators above this one never see it. */
  sendDirect(update: Update, written: () => void): boolean {
    if (update.kind !== 'event') return false;
    const result = executeOnce(this.args, update, this.text, this.variables, this.execute);
    const json = result instanceof Promise ? undefined : sharedJson(result);
    if (json === undefined) return false;
    sharedResultStats.sentDirectly++;
    this.writer!.writeSharedResult(this.writer!.sharedResultId, json, written);
    return true;
  }

  private async map(result: IteratorResult<Update>): Promise<IteratorResult<ExecutionResult>> {
    if (result.done) {
      this.end(false);
      return result;
    }
    try {
      return { value: await executeOnce(this.args, result.value, this.text, this.variables, this.execute), done: false };
    } catch (error) {
      this.end(true);
      await this.returnIgnoringErrors();
      throw error;
    }
  }

  // When its stream finished or failed, or the transport closed it: the first of those only.
  private end(failed: boolean): void {
    const ends = this.ends;
    this.ends = undefined;
    ends?.ended(this.args, this.startedAt, failed);
  }

  private async returnIgnoringErrors(): Promise<void> {
    try {
      await this.source.return?.();
    } catch {
      // Keep the original error when closing the source also fails.
    }
  }
}

/**
 * graphql's subscribe(), executing each event's selection once for all
 * subscriptions with the same share key. `ends` is told when each
 * subscription is over; `execute` runs a selection (graphql's by default).
 */
export async function subscribeSharingResults(
  args: ExecutionArgs,
  { ends, execute: executeSelection = execute }: { ends?: SubscriptionEnds; execute?: Execute } = {},
): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const startedAt = performance.now();
  const stream = await createSourceEventStream(args);
  // An ExecutionResult here is the subscription's failure (access refused, bad input).
  if (!(Symbol.asyncIterator in stream)) {
    ends?.ended(args, startedAt, false);
    return stream;
  }
  const writer = args.contextValue as Partial<SharedResultWriter> | undefined;
  const source = (stream as AsyncIterable<Update>)[Symbol.asyncIterator]();
  const sendsDirectly = writer?.writeSharedResult !== undefined && stream instanceof LiveStream;
  const results = new SharedResults(source, args, startedAt, ends, executeSelection, sendsDirectly ? (writer as SharedResultWriter) : undefined);
  if (sendsDirectly && results.shared) stream.sendDirectly(results);
  return results;
}

/** The JSON of a result shared between subscribers, made once; undefined for any other result. */
export function sharedJson(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  const shared = result as SharedResult;
  const known = shared[SHARED_JSON];
  if (known === undefined) return undefined;
  if (known !== null) return known;
  sharedResultStats.serialized++;
  return (shared[SHARED_JSON] = JSON.stringify(result));
}
