/**
 * The HTTP requests whose work is not done yet, for stopping: the server
 * waits for connections, but a client can hang up while its operation still
 * runs (a load balancer's client during a deploy), and that operation's next
 * statement would meet a closed database. A request counts from the moment
 * the handler takes it until the promise the handler returns settles (every
 * handler here returns one for the work it starts: the direct path's answer,
 * yoga's Node adapter, the dashboard's file read). WebSocket operations are
 * counted by their transport (websocket.ts).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

/** A request listener that returns its work's promise (node:http ignores what a listener returns). */
export type RequestHandler = (request: IncomingMessage, response: ServerResponse) => unknown;

const isPromise = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';

export class RequestsInFlight {
  #running = 0;
  #waiting: (() => void)[] = [];
  #abandoned = false;

  /** `handler` as a listener whose work is counted. */
  track(handler: RequestHandler): RequestListener {
    return (request, response) => {
      const work = handler(request, response);
      if (!isPromise(work)) return;
      this.#running++;
      work.then(this.#settled, this.#failed);
    };
  }

  // Made once, not per request (every request passes here).
  readonly #settled = () => this.#settle();
  readonly #failed = (error: unknown) => {
    this.#settle();
    // Still a rejection nobody handled, as it was before it was counted (the process counts those).
    void Promise.reject(error);
  };

  get running(): number {
    return this.#running;
  }

  /** Resolves once no request's work is running (at once after abandon()). */
  settled(): Promise<void> {
    if (this.#running === 0 || this.#abandoned) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Stops waiting (the grace period is over): what still runs meets a closed database. Returns how many. */
  abandon(): number {
    // Also for a wait that starts later: the grace period can end while the server still waits for its connections.
    this.#abandoned = true;
    for (const resolve of this.#waiting.splice(0)) resolve();
    return this.#running;
  }

  #settle(): void {
    this.#running--;
    if (this.#running === 0) for (const resolve of this.#waiting.splice(0)) resolve();
  }
}
