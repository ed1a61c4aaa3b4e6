/**
 * Builds the dashboard (dashboard/) into dist/dashboard/: one JavaScript and
 * one CSS bundle under assets/, named by content hash so they can be cached
 * for good, and index.html pointing at them. Always from the sources: nothing
 * built is committed, so what is served is what the sources say.
 *
 *   node --import tsx scripts/build-dashboard.ts
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DASHBOARD_SOURCES = join(root, 'dashboard');
export const DASHBOARD_BUILD = join(root, 'dist', 'dashboard');

export async function buildDashboard(outDir = DASHBOARD_BUILD): Promise<void> {
  await rm(outDir, { recursive: true, force: true });
  const assets = join(outDir, 'assets');
  await mkdir(assets, { recursive: true });
  const result = await build({
    entryPoints: [join(DASHBOARD_SOURCES, 'src', 'main.tsx')],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: false,
    entryNames: '[name]-[hash]',
    outdir: assets,
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
  const script = outputs.find((name) => name.endsWith('.js'));
  const style = outputs.find((name) => name.endsWith('.css'));
  if (!script || !style) throw new Error(`the dashboard build wrote ${outputs.join(', ')}: expected one .js and one .css`);
  const template = await readFile(join(DASHBOARD_SOURCES, 'index.html'), 'utf8');
  await writeFile(
    join(outDir, 'index.html'),
    template.replace('%SCRIPT%', `/assets/${script}`).replace('%STYLE%', `/assets/${style}`),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildDashboard();
  console.log(`dashboard built into ${DASHBOARD_BUILD}`);
}
