/**
 * One load phase's bookkeeping in the driver: when each change was sent,
 * when each path received it, and from that the latency, the changes missing
 * or received twice, and whether the phase's last third fell behind its first.
 */
import { round, roundSummary, summarize } from '../lib/stats.js';
import type { Path, PathResult } from './driver.js';

export class Tracker {
  readonly sends = new Map<string, number>();
  private readonly stats = new Map<Path, { received: Set<string>; duplicates: number; latencies: number[]; offsets: number[] }>();
  readonly measureFrom: number;

  constructor(
    paths: Path[],
    readonly start: number,
    readonly warmupMs: number,
  ) {
    this.measureFrom = start + warmupMs;
    for (const path of paths) this.stats.set(path, { received: new Set(), duplicates: 0, latencies: [], offsets: [] });
  }

  sent(keys: string[], at: number): void {
    for (const key of keys) this.sends.set(key, at);
  }

  receive(path: Path, key: string, at: number): void {
    const sentAt = this.sends.get(key);
    const stats = this.stats.get(path);
    if (sentAt === undefined || !stats) return; // an earlier phase's change arriving late
    if (stats.received.has(key)) {
      stats.duplicates++;
      return;
    }
    stats.received.add(key);
    if (sentAt >= this.measureFrom) {
      stats.latencies.push(at - sentAt);
      stats.offsets.push(sentAt - this.measureFrom);
    }
  }

  complete(): boolean {
    for (const stats of this.stats.values()) if (stats.received.size < this.sends.size) return false;
    return true;
  }

  result(durationMs: number): Partial<Record<Path, PathResult>> {
    const results: Partial<Record<Path, PathResult>> = {};
    for (const [path, stats] of this.stats) {
      const first: number[] = [];
      const last: number[] = [];
      stats.offsets.forEach((offset, i) => {
        if (offset < durationMs / 3) first.push(stats.latencies[i]!);
        else if (offset >= (2 * durationMs) / 3) last.push(stats.latencies[i]!);
      });
      results[path] = {
        expected: this.sends.size,
        received: stats.received.size,
        missing: this.sends.size - stats.received.size,
        duplicates: stats.duplicates,
        latency: roundSummary(summarize(stats.latencies)),
        firstThirdP50: round(summarize(first).p50),
        lastThirdP50: round(summarize(last).p50),
      };
    }
    return results;
  }
}
