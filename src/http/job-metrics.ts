/**
 * The periodic jobs' metrics: runs by job and outcome, and the stalled
 * requests now (read from the database at each scrape, so every replica
 * reports the same count, not only the one running the stall check).
 * Labels are the jobs' fixed names and two outcomes: bounded.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { JobOutcome } from '../services/jobs.js';

export type JobMetrics = { jobRun(job: string, outcome: JobOutcome): void };

export function registerJobMetrics(registry: Registry, options: { stalledRequests: () => Promise<number> }): JobMetrics {
  const runs = new Counter({
    name: 'tracker_job_runs_total',
    help: 'Periodic job runs this process made, by job and outcome (success, failure)',
    labelNames: ['job', 'outcome'],
    registers: [registry],
  });
  new Gauge({
    name: 'tracker_stalled_requests',
    help: 'Requests in flight with a stage marked stalled (running past STALL_FACTOR times its expected duration)',
    registers: [registry],
    async collect() {
      try {
        this.set(await options.stalledRequests());
      } catch {
        // The database is away: keep the last value rather than fail the whole scrape (/ready reports the database).
      }
    },
  });
  return { jobRun: (job, outcome) => runs.inc({ job, outcome }) };
}
