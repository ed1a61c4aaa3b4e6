/**
 * The dashboard page at `/` and its bundles at `/assets/…`, from the folder
 * scripts/build-dashboard.ts writes (dist/dashboard/). Everything else goes
 * on to the API. The files are read per request: a rebuild is served without
 * a restart, and a missing build is a 503 that says how to make one.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Role } from '../services/access.js';
import type { RequestHandler } from './requests-in-flight.js';

export const DEFAULT_DASHBOARD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'dashboard');

/** A demo user the page offers to sign in as (embedded development mode only). */
export type DashboardSignIn = { name: string; role: Role; token: string };

// Its own scripts and styles only, talking to its own origin (HTTP and WebSocket).
const POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

// Bundle names carry their content's hash (scripts/build-dashboard.ts): one name, one content, forever.
const ASSET = /^\/assets\/([\w-]+\.(js|css))$/;
const CONTENT_TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

const MISSING_BUILD = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dashboard not built</title></head>
<body><h1>The dashboard is not built</h1>
<p>Run <code>npm run build:dashboard</code> (<code>npm start</code> does it first), then reload.
The API is at <a href="/graphql">/graphql</a>.</p></body></html>
`;

/**
 * Serves the dashboard in front of `next` (the API). `signIns` are written
 * into the page as data (not script) for its one-click sign-in; the page is
 * then never cached.
 */
export function serveDashboard(next: RequestHandler, options: { dir?: string; signIns?: DashboardSignIn[] } = {}): RequestHandler {
  const dir = options.dir ?? DEFAULT_DASHBOARD_DIR;
  const signIns = JSON.stringify(options.signIns ?? []).replace(/</g, '\\u003c');
  return (request, response) => {
    const path = (request.url ?? '/').split('?')[0]!;
    const asset = ASSET.exec(path);
    if (path !== '/' && !asset) return next(request, response);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return send(request, response, 405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' }, 'GET or HEAD\n');
    }
    return (async () => {
      if (asset) {
        const body = await readFile(join(dir, 'assets', asset[1]!)).catch(() => undefined);
        if (!body) return send(request, response, 404, { 'content-type': 'text/plain; charset=utf-8' }, 'not found\n');
        return send(request, response, 200, { 'content-type': CONTENT_TYPES[asset[2]!]!, 'cache-control': 'public, max-age=31536000, immutable' }, body);
      }
      const page = await readFile(join(dir, 'index.html'), 'utf8').catch(() => undefined);
      const html = page?.replace('</head>', `<script type="application/json" id="sign-ins">${signIns}</script>\n</head>`);
      send(request, response, html ? 200 : 503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, html ?? MISSING_BUILD);
    })().catch((error: unknown) => response.destroy(error as Error));
  };
}

function send(request: IncomingMessage, response: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
  response.writeHead(status, {
    ...headers,
    'content-length': String(Buffer.byteLength(body)),
    'content-security-policy': POLICY,
    'x-content-type-options': 'nosniff',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}
