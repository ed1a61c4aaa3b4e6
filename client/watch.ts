/**
 * A live subscription that outlives its connections: it reconnects with
 * backoff, asks for a fresh token on every connection, resubscribes from the
 * last update it yielded, and drops anything at or below that point, so the
 * caller sees every update once and in order.
 */
import { Repeater } from '@repeaterjs/repeater';
import { fromGraphQLErrors, isFinal, TrackerError } from './errors.js';
import type { ExecutionResultLike, OpenStream, Operation } from './transports.js';

export type WatchState = 'connecting' | 'live' | 'reconnecting';

export type RetryOptions = { initialDelayMs?: number; maxDelayMs?: number };

/**
 * How many updates a watch holds for a caller that has not taken them yet.
 * Past it the watch stops reading that connection, hands over what it holds,
 * and resumes from there on a new one: a slow caller costs a reconnect, never
 * unbounded memory or a lost update.
 */
export const DEFAULT_MAX_BUFFERED_UPDATES = 1_000;

/** What one kind of watch knows: how to subscribe from where it is, and which updates are new. */
export type Resumable<T> = {
  /** The subscription from the last point yielded (or the caller's starting point). */
  operation(): Operation;
  /** The update in a message's data. */
  updateOf(data: Record<string, unknown>): T;
  /** True when `update` comes after everything yielded; it is then recorded as yielded. */
  advance(update: T): boolean;
  /** The last update a stream will send (a finished request). */
  isLast(update: T): boolean;
  /** True when a stream the server completed twice in a row without anything new can have nothing more to send. */
  isOverWhenCompletedEmpty(): boolean;
};

export type WatchDependencies = {
  openStream: OpenStream;
  getToken: () => string | Promise<string>;
  retry: RetryOptions;
  /** Aborted by the client's close() or the caller's signal: the watch ends. */
  closing: AbortSignal;
  maxBufferedUpdates: number;
  onState(state: WatchState | 'ended'): void;
};

const DEFAULT_INITIAL_DELAY_MS = 500;
const DEFAULT_MAX_DELAY_MS = 15_000;

export function watch<T>(deps: WatchDependencies, resumable: Resumable<T>): AsyncIterableIterator<T> {
  return new Repeater<T>(async (push, stop) => {
    const stopped = new AbortController();
    const onClosing = () => stop();
    deps.closing.addEventListener('abort', onClosing);
    void stop.then(() => stopped.abort());
    if (deps.closing.aborted) stop();
    try {
      await resumeForever(deps, resumable, push, stopped.signal);
      stop();
    } catch (error) {
      stop(error);
    } finally {
      deps.closing.removeEventListener('abort', onClosing);
      deps.onState('ended');
    }
  });
}

/** Connection after connection until the stream is over, `signal` aborts, or a final error. */
async function resumeForever<T>(
  deps: WatchDependencies,
  resumable: Resumable<T>,
  push: (value: T) => Promise<unknown>,
  signal: AbortSignal,
): Promise<void> {
  let failures = 0;
  let emptyCompletions = 0;
  let refusedToken: string | undefined;
  for (let attempt = 0; !signal.aborted; attempt++) {
    deps.onState(attempt === 0 ? 'connecting' : 'reconnecting');
    const outcome = await subscribeOnce(deps, resumable, push, signal, refusedToken);
    if (outcome.yielded) failures = 0;
    refusedToken = outcome.kind === 'failed' && outcome.error.code === 'UNAUTHENTICATED' ? outcome.token : undefined;
    if (signal.aborted || outcome.kind === 'over') return;
    // A stopping service completes streams too: only a second empty completion in a row says the stream is over.
    emptyCompletions = outcome.kind === 'completed' && !outcome.yielded ? emptyCompletions + 1 : 0;
    if (emptyCompletions >= 2 && resumable.isOverWhenCompletedEmpty()) return;
    if (outcome.kind === 'failed' && (isFinal(outcome.error) || outcome.tokenRefusedAgain)) throw outcome.error;
    // Completed without finishing (the service is stopping), cut off, expired or dropped: resume.
    await sleep(backoffDelay(failures++, deps.retry), signal);
  }
}

type Outcome = { yielded: boolean } & (
  | { kind: 'over' | 'completed' }
  // tokenRefusedAgain: getToken() gave the very token the service had just refused; asking again will not help.
  | { kind: 'failed'; error: TrackerError; token?: string; tokenRefusedAgain?: boolean }
);

/** One connection: yields what is new until the server ends it, it drops, or the stream has said its last. */
async function subscribeOnce<T>(
  deps: WatchDependencies,
  resumable: Resumable<T>,
  push: (value: T) => Promise<unknown>,
  signal: AbortSignal,
  refusedToken: string | undefined,
): Promise<Outcome> {
  const token = await tokenFrom(deps.getToken);
  if (signal.aborted) return { kind: 'completed', yielded: false };
  if (token === refusedToken) {
    const error = new TrackerError('UNAUTHENTICATED', 'the service refused this token and getToken() gave it again');
    return { kind: 'failed', error, yielded: false, tokenRefusedAgain: true };
  }
  const connection = new AbortController();
  const abortConnection = () => connection.abort();
  signal.addEventListener('abort', abortConnection);
  let yielded = false;
  let over = false;
  let refused: TrackerError | undefined;
  // Messages are handled one at a time, each waiting for the caller to take the one before.
  let handled: Promise<unknown> = Promise.resolve();
  let buffered = 0;
  const handle = (result: ExecutionResultLike) => {
    if (connection.signal.aborted) return;
    if (result.errors?.length) {
      refused = fromGraphQLErrors(result.errors);
      connection.abort();
      return;
    }
    const field = Object.values(result.data ?? {})[0];
    if (!field || typeof field !== 'object') return;
    const update = resumable.updateOf(field as Record<string, unknown>);
    if (!resumable.advance(update)) return;
    yielded = true;
    if (resumable.isLast(update)) {
      over = true;
      connection.abort();
    }
    buffered++;
    handled = handled.then(() => push(update)).finally(() => buffered--);
    // The caller is this far behind: hand over what is held and resume after it on a new connection.
    if (buffered >= deps.maxBufferedUpdates) connection.abort();
  };
  try {
    await deps.openStream(resumable.operation(), token, { opened: () => deps.onState('live'), next: handle }, connection.signal);
    await handled;
    if (refused) return { kind: 'failed', error: refused, yielded, token };
    return { kind: over ? 'over' : 'completed', yielded };
  } catch (error) {
    await handled;
    if (over) return { kind: 'over', yielded };
    const failure = error instanceof TrackerError ? error : new TrackerError('CONNECTION_LOST', String(error));
    return { kind: 'failed', error: refused ?? failure, yielded, token };
  } finally {
    signal.removeEventListener('abort', abortConnection);
    connection.abort();
  }
}

/** The caller's token; a getToken() that fails says there is none to give, and the watch ends with that. */
async function tokenFrom(getToken: WatchDependencies['getToken']): Promise<string> {
  try {
    return await getToken();
  } catch (error) {
    if (error instanceof TrackerError) throw error;
    throw new TrackerError('UNAUTHENTICATED', `getToken() failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Exponential, capped, with jitter (half to all of the step), so clients cut off together do not return together. */
export function backoffDelay(failures: number, retry: RetryOptions): number {
  const initial = retry.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS;
  const ceiling = Math.min(retry.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, initial * 2 ** Math.min(failures, 30));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
    if (signal.aborted) done();
  });
}
