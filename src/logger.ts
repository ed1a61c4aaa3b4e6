/** The one structured logger (pino). Modules take a child with their own `component`. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = 'info'): Logger {
  return pino({ level, base: { service: 'content-request-tracker' } });
}

/** For tests and tools that want no output. */
export const silentLogger: Logger = pino({ level: 'silent' });
