/**
 * npm run schema:print   writes schema.graphql from the Pothos code
 * npm run schema:check   fails when schema.graphql differs from the code (CI)
 *
 * ContentRequestStatus holds the statuses the migrations define: read from an
 * in-memory PGlite with every migration applied.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { openPglite } from '../src/db/client.js';
import { migrateUp } from '../src/db/migrate.js';
import { printSchemaSdl } from '../src/schema/index.js';
import { requestStatuses } from '../src/services/pipeline.js';

const file = fileURLToPath(new URL('../schema.graphql', import.meta.url));
const database = await openPglite();
let printed: string;
try {
  await migrateUp(database);
  printed = printSchemaSdl(await requestStatuses(database.db));
} finally {
  await database.close();
}

if (process.argv[2] === 'check') {
  const committed = await readFile(file, 'utf8').catch(() => '');
  if (committed !== printed) {
    console.error('schema.graphql is out of date with src/schema: run `npm run schema:print` and commit it');
    process.exit(1);
  }
  console.log('schema.graphql matches the code');
} else {
  await writeFile(file, printed);
  console.log(`wrote ${file}`);
}
