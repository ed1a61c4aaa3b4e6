/**
 * One clock for every process of a benchmark run: CLOCK_MONOTONIC (what
 * process.hrtime reads) is system-wide on Linux, so a time taken in the
 * driver process and one taken in the server process can be subtracted.
 * Times are milliseconds since a base the parent hands to its children
 * (a Number of nanoseconds since boot would lose precision after ~104 days).
 */
let base = process.hrtime.bigint();

/** The base as a string, to hand to a child process. */
export function clockBase(): string {
  return base.toString();
}

export function useClockBase(value: string): void {
  base = BigInt(value);
}

/** Milliseconds since the run's base, with sub-microsecond resolution. */
export function now(): number {
  return Number(process.hrtime.bigint() - base) / 1e6;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every few milliseconds; false if `timeoutMs` passed first. */
export async function until(condition: () => boolean, timeoutMs: number, everyMs = 5): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (!condition()) {
    if (now() > deadline) return false;
    await sleep(everyMs);
  }
  return true;
}
