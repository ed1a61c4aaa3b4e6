/**
 * npm run db:migrate                 apply pending migrations
 * npm run db:rollback                undo the newest applied migration
 * npm run db:rollback -- --steps 3   undo the newest three
 * npm run db:rollback -- --all       undo every migration
 *
 * On DATABASE_URL when set, else on the PGlite folder DATA_DIR (default .data).
 */
import { parseArgs } from 'node:util';
import { loadDatabaseConfig } from '../src/config.js';
import { openDatabase } from '../src/db/client.js';
import { appliedTags, migrateDown, migrateUp } from '../src/db/migrate.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { steps: { type: 'string' }, all: { type: 'boolean', default: false } },
});
const direction = positionals[0];
if (direction !== 'up' && direction !== 'down') {
  console.error('usage: db-migrate.ts up | down [--steps N | --all]');
  process.exit(2);
}
const steps = values.all ? Number.MAX_SAFE_INTEGER : Number(values.steps ?? 1);
if (!Number.isInteger(steps) || steps < 1) {
  console.error(`--steps must be a positive integer, got ${values.steps}`);
  process.exit(2);
}

const databaseConfig = loadDatabaseConfig();
const database = await openDatabase(databaseConfig);
try {
  const where = databaseConfig.kind === 'postgres' ? 'PostgreSQL (DATABASE_URL)' : `PGlite (${databaseConfig.dataDir})`;
  const changed = direction === 'up' ? await migrateUp(database) : await migrateDown(database, steps);
  const verb = direction === 'up' ? 'applied' : 'rolled back';
  console.log(changed.length ? `${verb} on ${where}: ${changed.join(', ')}` : `nothing to do on ${where}`);
  const now = await database.withSession((session) => appliedTags(session as never));
  console.log(`applied now: ${now.length ? now.join(', ') : 'none'}`);
} finally {
  await database.close();
}
