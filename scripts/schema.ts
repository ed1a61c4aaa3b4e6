/**
 * npm run schema:print   writes schema.graphql from the Pothos code
 * npm run schema:check   fails when schema.graphql differs from the code (CI)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { printSchemaSdl } from '../src/schema/index.js';

const file = fileURLToPath(new URL('../schema.graphql', import.meta.url));
const printed = printSchemaSdl();

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
