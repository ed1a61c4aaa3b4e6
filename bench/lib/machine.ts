import os from 'node:os';

export type Machine = {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  platform: string;
  node: string;
  /** The service's NODE_ENV (`npm run bench` sets production, as `npm start` does); null when unset. */
  nodeEnv: string | null;
  postgres: string;
  postgresSettings: Record<string, string>;
  /** 1-minute load average when the run started. */
  loadAverage: number;
};

export function describeMachine(postgres: { version: string; settings: Record<string, string> }): Machine {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    nodeEnv: process.env.NODE_ENV ?? null,
    postgres: postgres.version,
    postgresSettings: postgres.settings,
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}
