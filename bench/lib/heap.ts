/**
 * The heap this process uses after full garbage collections. `node
 * --expose-gc` gives gc(); without it (under vitest, say) the flag is set at
 * run time and gc() taken from a fresh context, which V8 allows.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | undefined;

function gc(): () => void {
  if (collect) return collect;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return (collect = exposed);
  setFlagsFromString('--expose-gc');
  return (collect = runInNewContext('gc') as () => void);
}

/** heapUsed in bytes after the heap has settled: collect until two readings agree within 64 KB (at most 6 rounds). */
export async function settledHeapUsed(): Promise<number> {
  const collectNow = gc();
  let previous = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 6; round++) {
    collectNow();
    // Let finalizers and weak callbacks run, then collect again.
    await new Promise((resolve) => setImmediate(resolve));
    const used = process.memoryUsage().heapUsed;
    if (Math.abs(used - previous) < 64 * 1024) return used;
    previous = used;
  }
  return previous;
}
