/**
 * Phase 4b: the time one change takes to reach N subscribers of one
 * request in one process, from the client's side and the server's.
 */
import WebSocket from 'ws';
import type { RunningApp } from '../../src/app.js';
import { heldFrameWrites } from '../../src/http/outgoing-frames.js';
import { now, until } from '../lib/clock.js';
import type { CpuShares } from '../lib/cpu.js';
import { round, roundSummary, summarize, type Summary } from '../lib/stats.js';
import type { FanoutRound, LoadResult } from './driver.js';
import { changeKey } from './writer.js';
import { joinTimes, probeHub, serverHeap, type Bench } from './phase.js';
import type { HeapFigure } from './heap.js';
import type { Seeded } from './seed.js';

export type FanoutFigure = {
  subscribers: number;
  sockets: number;
  rounds: number;
  /** From just before the change was sent until the first, median and last subscriber had it. */
  first: Summary;
  median: Summary;
  last: Summary;
  commitToHub: Summary;
  /** From just before the change was sent until the server had handed the first and the last subscriber's frame to its socket. */
  serverFirstSend: Summary;
  serverLastSend: Summary;
  commitMs: Summary;
  /** last.p50 over the raw baseline's p50 at the lowest fixed rate. */
  ratioToRawP50: number;
  cpu: CpuShares;
};

/**
 * Notes the time of every WebSocket frame the server hands to a socket, by
 * wrapping `ws`'s send in this process (the server's sockets are `ws` sockets)
 * and observing the service's writes of held frames (a shared result's, several
 * a write): when the server had sent a change to its last subscriber, apart
 * from when the client process had read it.
 */
export function recordServerSends() {
  const prototype = WebSocket.prototype as unknown as { send: (...args: unknown[]) => void };
  const original = prototype.send;
  const times: number[] = [];
  prototype.send = function send(this: unknown, ...args: unknown[]) {
    times.push(now());
    return original.apply(this, args);
  };
  heldFrameWrites.observe = (frames) => {
    const at = now();
    for (let i = 0; i < frames; i++) times.push(at);
  };
  return {
    times,
    stop: () => {
      prototype.send = original;
      heldFrameWrites.observe = undefined;
    },
  };
}

export async function fanoutPhase(
  bench: Bench,
  running: RunningApp,
  seeded: Seeded,
  heap: HeapFigure,
  rawBaseline: LoadResult,
): Promise<{ figure: FanoutFigure; perSubscriptionBytes: number }> {
  const { driver, plan, log } = bench;
  const n = seeded.idle.length;
  log(`fan-out: ${n} subscribers of one request`);
  const before = await serverHeap(running);
  const opened = await driver.call<{ ms: number }>('subscribeIdle', { ids: Array.from({ length: n }, () => seeded.broadcast.id) });
  log(`fan-out: opened ${n} subscriptions in ${Math.round(opened.ms)} ms`);
  await until(() => running.hub.subscriberCount === n, 60_000);
  const after = await serverHeap(running);
  const probe = probeHub(running, `request:${seeded.broadcast.id}`);
  const sends = recordServerSends();
  const stopMeter = await bench.meter.start();
  let rounds: FanoutRound[];
  try {
    rounds = await driver.call<FanoutRound[]>('fanout', {
      rounds: plan.fanout.rounds,
      warmupRounds: plan.fanout.warmupRounds,
      timeoutMs: 60_000,
    });
  } finally {
    sends.stop();
    probe.stop();
  }
  const cpu = await stopMeter();
  await driver.call('unsubscribeIdle');
  await driver.call('disconnectSockets');
  // The server's first and last send of each round: the 1st and n-th frame sent after the change was.
  const serverFirstSend: number[] = [];
  const serverLastSend: number[] = [];
  for (const round of rounds) {
    const first = sends.times.findIndex((at) => at >= round.sentAt);
    const last = sends.times[first + n - 1];
    if (first < 0 || last === undefined) continue;
    serverFirstSend.push(sends.times[first]! - round.sentAt);
    serverLastSend.push(last - round.sentAt);
  }
  const last = roundSummary(summarize(rounds.map((r) => r.last)));
  return {
    perSubscriptionBytes: Math.round((after - before) / n),
    figure: {
      subscribers: n,
      sockets: heap.sockets,
      rounds: rounds.length,
      first: roundSummary(summarize(rounds.map((r) => r.first))),
      median: roundSummary(summarize(rounds.map((r) => r.p50))),
      last,
      commitToHub: roundSummary(
        summarize(joinTimes(rounds.map((r) => [changeKey(seeded.broadcast.id, r.sequence), r.sentAt]), probe.times)),
      ),
      serverFirstSend: roundSummary(summarize(serverFirstSend)),
      serverLastSend: roundSummary(summarize(serverLastSend)),
      commitMs: roundSummary(summarize(rounds.map((r) => r.commitMs))),
      ratioToRawP50: round(last.p50 / rawBaseline.paths.raw!.latency.p50, 1),
      cpu,
    },
  };
}
