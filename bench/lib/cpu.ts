/**
 * Who used the CPU during a phase, from /proc (Linux): this process (the
 * service), the driver process, PostgreSQL's processes working for the
 * benchmark's database (its backends and the server's own background
 * processes), and everything else on the machine. On a shared 2-core machine
 * the last one says whether a figure was measured on a quiet machine.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export type CpuShares = {
  /** Each in cores (1 = one core busy for the whole phase). */
  server: number;
  driver: number;
  postgres: number;
  other: number;
  /** All cores together, 0-1. */
  machine: number;
};

function processTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return undefined; // gone, or not Linux
  }
}

function machineTicks() {
  let busy = 0;
  let total = 0;
  for (const { times } of os.cpus()) {
    busy += times.user + times.nice + times.sys + times.irq;
    total += times.user + times.nice + times.sys + times.irq + times.idle;
  }
  return { busy, total }; // milliseconds
}

export class CpuMeter {
  private constructor(
    private readonly monitor: pg.Client,
    private readonly database: string,
    private readonly driverPid: number | undefined,
  ) {}

  static async connect(databaseUrl: string, database: string, driverPid: number | undefined): Promise<CpuMeter> {
    const monitor = new pg.Client({ connectionString: databaseUrl, application_name: 'tracker-bench:cpu' });
    await monitor.connect();
    return new CpuMeter(monitor, database, driverPid);
  }

  /** PostgreSQL processes that work for this benchmark: its database's backends and the server's background processes. */
  private async postgresPids(): Promise<number[]> {
    const { rows } = await this.monitor.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = $1 or datname is null',
      [this.database],
    );
    return rows.map((row) => row.pid);
  }

  async start(): Promise<() => Promise<CpuShares>> {
    const startedAt = process.hrtime.bigint();
    const machineBefore = machineTicks();
    const pgBefore = new Map<number, number>();
    for (const pid of await this.postgresPids()) pgBefore.set(pid, processTicks(pid) ?? 0);
    const driverBefore = this.driverPid ? (processTicks(this.driverPid) ?? 0) : 0;
    const serverBefore = process.cpuUsage();
    return async () => {
      const wallSeconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      const serverUsage = process.cpuUsage(serverBefore);
      const server = (serverUsage.user + serverUsage.system) / 1e6 / wallSeconds;
      const driver = this.driverPid ? ((processTicks(this.driverPid) ?? 0) - driverBefore) / TICKS_PER_SECOND / wallSeconds : 0;
      let postgresTicks = 0;
      for (const pid of new Set([...pgBefore.keys(), ...(await this.postgresPids())])) {
        const after = processTicks(pid);
        if (after !== undefined) postgresTicks += after - (pgBefore.get(pid) ?? 0);
      }
      const postgres = postgresTicks / TICKS_PER_SECOND / wallSeconds;
      const machineAfter = machineTicks();
      const busyMs = machineAfter.busy - machineBefore.busy;
      const totalMs = machineAfter.total - machineBefore.total;
      const machineCores = busyMs / 1000 / wallSeconds;
      return {
        server: round2(server),
        driver: round2(driver),
        postgres: round2(postgres),
        other: round2(Math.max(0, machineCores - server - driver - postgres)),
        machine: round2(totalMs > 0 ? busyMs / totalMs : NaN),
      };
    };
  }

  async close(): Promise<void> {
    await this.monitor.end();
  }
}

const round2 = (value: number) => Math.round(value * 100) / 100;

/** The machine's busy share over `ms` with nothing of ours running: is it quiet? */
export async function backgroundLoad(ms = 1_000): Promise<number> {
  const before = machineTicks();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = machineTicks();
  const total = after.total - before.total;
  return total > 0 ? round2((after.busy - before.busy) / total) : NaN;
}
