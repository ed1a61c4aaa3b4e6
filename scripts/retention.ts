/**
 * npm run retention                 remove finished requests older than RETENTION_DAYS, with their stages and events
 * npm run retention -- --dry-run    count what would be removed; remove nothing
 *
 * On DATABASE_URL when set, else on the PGlite folder DATA_DIR (default .data;
 * stop the service first: one process opens a data folder at a time). Prints
 * counts only, never a request's content.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadRetentionConfig } from '../src/config.js';
import { openDatabase } from '../src/db/client.js';
import { migrateUp } from '../src/db/migrate.js';
import { countPurgeable, purgeFinishedRequests, retentionCutoff, type PurgeCounts } from '../src/services/retention.js';

let dryRun: boolean;
try {
  dryRun = parseArgs({ options: { 'dry-run': { type: 'boolean', default: false } } }).values['dry-run'];
} catch {
  // Not the option's text: it is the caller's input.
  console.error('unknown option\nusage: npm run retention [-- --dry-run]');
  process.exit(2);
}

let config: ReturnType<typeof loadRetentionConfig>;
try {
  config = loadRetentionConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(2);
}
const { days, batchSize } = config.retention;
const cutoff = retentionCutoff(days);
if (!cutoff) {
  console.log('RETENTION_DAYS is 0: everything is kept, nothing to do');
  process.exit(0);
}

const describe = (counts: PurgeCounts) => `${counts.requests} requests, ${counts.stages} stages, ${counts.events} events`;
const database = await openDatabase(config.database);
try {
  await migrateUp(database);
  console.log(`finished requests untouched since ${cutoff.toISOString()} (RETENTION_DAYS=${days})`);
  if (dryRun) {
    console.log(`dry run: would remove ${describe(await countPurgeable(database.db, cutoff))}`);
  } else {
    const removed = await purgeFinishedRequests(database.db, {
      cutoff,
      batchSize,
      afterBatch: (batch) => console.log(`  batch: ${describe(batch)}`),
    });
    console.log(`removed ${describe(removed)}`);
  }
} finally {
  await database.close();
}
