/**
 * npm run token -- --role admin --sub alice [--org o1] [--ttl 1h]
 *
 * Prints (only) a bearer token the service accepts, signed as the service
 * verifies: with JWT_SECRET, or, embedded without one, with the development
 * secret kept in DATA_DIR (made there if the service has not yet). With
 * JWKS_URL the identity provider signs the tokens: none is minted here.
 */
import { mkdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../src/config.js';
import { userRoles } from '../src/db/tables.js';
import { developmentSecret, signToken } from '../src/http/auth.js';

const USAGE = `usage: npm run token -- --role <${userRoles.join('|')}> --sub <user id> [--org <organization id>] [--ttl <n>[s|m|h|d], default 1h]`;
const UNIT_SECONDS = { s: 1, m: 60, h: 3_600, d: 86_400 } as const;

class UsageError extends Error {}

/** "90s", "30m", "1h", "7d" or a bare number of seconds, to seconds. */
function parseTtl(ttl: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(ttl);
  if (!match) throw new UsageError(`--ttl must be a whole number with an optional unit s, m, h or d (e.g. 90s, 30m, 1h, 7d), not "${ttl}"`);
  const seconds = Number(match[1]) * UNIT_SECONDS[(match[2] || 's') as keyof typeof UNIT_SECONDS];
  if (seconds < 1) throw new UsageError('--ttl must be at least 1 second');
  return seconds;
}

function parseArguments(args: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: { role: { type: 'string' }, sub: { type: 'string' }, org: { type: 'string' }, ttl: { type: 'string', default: '1h' } },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const role = userRoles.find((known) => known === values.role);
  if (!role) throw new UsageError(`--role must be one of ${userRoles.join(', ')}${values.role ? `, not "${values.role}"` : ''}`);
  if (!values.sub) throw new UsageError('--sub (the user id) is required');
  return { role, sub: values.sub, org: values.org, ttlSeconds: parseTtl(values.ttl) };
}

/** The key the service verifies with, as src/app.ts chooses it. */
async function signingSecret(config: ReturnType<typeof loadConfig>): Promise<Uint8Array> {
  const { verify } = config.auth;
  if (verify.kind === 'hs256') return new TextEncoder().encode(verify.secret);
  if (verify.kind === 'jwks') throw new UsageError('JWKS_URL is set: tokens come from that identity provider, not from here');
  if (config.database.kind !== 'pglite' || config.database.dataDir.startsWith('memory://')) {
    throw new UsageError('DATA_DIR is memory://: its development secret lives only inside the running service; set JWT_SECRET for both');
  }
  await mkdir(config.database.dataDir, { recursive: true });
  return developmentSecret(config.database.dataDir);
}

try {
  const args = parseArguments(process.argv.slice(2));
  const config = loadConfig();
  if (args.ttlSeconds > config.auth.maxLifetimeSeconds) {
    throw new UsageError(`--ttl is longer than TOKEN_MAX_LIFETIME_SECONDS (${config.auth.maxLifetimeSeconds} s): the service would refuse the token`);
  }
  const token = await signToken(
    await signingSecret(config),
    { sub: args.sub, role: args.role, organization_id: args.org ?? null },
    { expiresIn: `${args.ttlSeconds}s`, issuer: config.auth.issuer, audience: config.auth.audience },
  );
  console.log(token);
} catch (error) {
  if (!(error instanceof UsageError || error instanceof ConfigError)) throw error;
  console.error(error.message);
  if (error instanceof UsageError) console.error(USAGE);
  process.exit(error instanceof ConfigError ? 78 : 2);
}
