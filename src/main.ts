/**
 * The entry point: read the configuration, start the service, print the
 * development tokens when there are any, stop cleanly on SIGINT/SIGTERM.
 */
import { createApp, demoTokenLifetimeSeconds } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { DataDirectoryLockedError } from './db/client.js';
import { createLogger } from './logger.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}

const logger = createLogger(config.logLevel);
// A rejection nobody handled is a bug, but not one a client should be able to
// turn into an outage: logged, counted on /metrics, and the process goes on.
const faults = { unhandledRejections: 0 };
process.on('unhandledRejection', (reason) => {
  faults.unhandledRejections++;
  logger.error({ err: reason }, 'unhandled promise rejection');
});
const app = createApp(config, { logger, faults });

try {
  const running = await app.start();
  // Before anything is printed: whoever acts on the output (a supervisor, a test) may signal at once.
  stopOnSignals();
  if (running.developmentTokens.length) {
    const lifetime = demoTokenLifetimeSeconds(config.auth);
    const lines = running.developmentTokens.map(
      (user) => `  ${user.role.padEnd(10)} ${user.userId.padEnd(16)} Authorization: Bearer ${user.token}`,
    );
    console.log(
      [
        '',
        `Dashboard: ${running.url}/  (one click signs in as each demo user)`,
        `GraphiQL: ${running.url}/graphql  (the first tab runs as the student; each tab names the header to paste for its role)`,
        `Development tokens (${lifetime % 86_400 === 0 ? `${lifetime / 86_400} days` : `${lifetime} s`}):`,
        ...lines,
        '',
      ].join('\n'),
    );
  }
} catch (error) {
  if (error instanceof DataDirectoryLockedError) {
    console.error(error.message);
    process.exit(1);
  }
  logger.fatal({ err: error }, 'start-up failed');
  process.exit(1);
}

function stopOnSignals(): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1); // a second signal: stop waiting
      stopping = true;
      logger.info({ signal }, 'stopping');
      app.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'unclean stop');
          process.exit(1);
        },
      );
    });
  }
}
