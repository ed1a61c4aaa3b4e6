/**
 * Fails when the tables in src/db/tables.ts and the generated migrations in
 * drizzle/ disagree: regenerates into a copy of drizzle/ and expects nothing new.
 */
import { execFileSync } from 'node:child_process';
import { cp, readdir, rm } from 'node:fs/promises';

// drizzle-kit resolves --out relative to the working directory, even an absolute one.
const copy = '.drizzle-check';
await rm(copy, { recursive: true, force: true });
try {
  await cp('drizzle', copy, { recursive: true });
  const before = new Set(await readdir(copy));
  const output = execFileSync(
    'npx',
    ['drizzle-kit', 'generate', '--dialect=postgresql', '--schema=./src/db/tables.ts', `--out=${copy}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const added = (await readdir(copy)).filter((file) => !before.has(file));
  // drizzle-kit exits 0 even when it fails, so require its "nothing to do" line too.
  if (added.length > 0 || !/No schema changes/i.test(output)) {
    console.error(output);
    console.error(
      `src/db/tables.ts has changes with no migration (regenerating produced ${added.join(', ')}).\n` +
        'Run `npm run db:generate` and commit the result.',
    );
    process.exit(1);
  }
  console.log('migrations match the tables: regenerating produced nothing new');
} finally {
  await rm(copy, { recursive: true, force: true });
}
