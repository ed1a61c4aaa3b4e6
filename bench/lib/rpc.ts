/**
 * A child process the benchmark drives by messages: the parent calls
 * methods, the child answers each with a result or an error. Keeps load
 * generators and clients out of the measured server's process and heap.
 */
import { fork, type ChildProcess } from 'node:child_process';

type Call = { id: number; method: string; params: unknown };
type Answer = { id: number; result?: unknown; error?: string };

export type RpcChild = {
  call<T>(method: string, params?: unknown): Promise<T>;
  /** Asks the child to exit, and kills it if it has not after a grace period. */
  close(): Promise<void>;
  pid: number | undefined;
};

/** Starts `modulePath` (TypeScript, through tsx) as a child process speaking this protocol. */
export function forkRpcChild(modulePath: string, env: Record<string, string | undefined> = {}): RpcChild {
  const child: ChildProcess = fork(modulePath, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      for (const { reject } of pending.values()) reject(new Error(`benchmark child exited (${signal ?? code})`));
      pending.clear();
      resolve();
    });
  });
  child.on('message', (message: Answer) => {
    const waiting = pending.get(message.id);
    if (!waiting) return;
    pending.delete(message.id);
    if (message.error !== undefined) waiting.reject(new Error(message.error));
    else waiting.resolve(message.result);
  });
  return {
    pid: child.pid,
    call<T>(method: string, params?: unknown) {
      if (exited) return Promise.reject(new Error('benchmark child has exited'));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, method, params } satisfies Call);
      });
    },
    async close() {
      if (exited) return;
      child.send({ id: 0, method: '$exit', params: null } satisfies Call);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

export type RpcHandlers = Record<string, (params: any) => unknown>;

/** The child's side: answers calls with `handlers`, exits on `$exit` (after `cleanup`) or when the parent goes. */
export function serveRpc(handlers: RpcHandlers, cleanup: () => Promise<void> = async () => undefined): void {
  if (!process.send) throw new Error('serveRpc must run in a forked child process');
  const exitCleanly = async () => {
    await cleanup().catch(() => undefined);
    process.exit(0);
  };
  process.on('disconnect', () => void exitCleanly());
  process.on('message', async (message: Call) => {
    if (message.method === '$exit') return void exitCleanly();
    const handler = handlers[message.method];
    let answer: Answer;
    try {
      if (!handler) throw new Error(`no method ${message.method}`);
      answer = { id: message.id, result: await handler(message.params) };
    } catch (error) {
      answer = { id: message.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
    }
    process.send!(answer);
  });
}
