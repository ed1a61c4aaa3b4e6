/**
 * Bearer tokens (jose): HS256 with a shared secret, or RS256 against a JWKS.
 * Claims: `sub` (user id), `role`, `organization_id`.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { AuthConfig } from '../config.js';
import { ServiceError } from '../services/errors.js';
import { userRoles, type Viewer } from '../services/access.js';

const claimsSchema = z.object({
  sub: z.string().min(1).max(100),
  role: z.enum(userRoles),
  organization_id: z.string().min(1).max(100).nullish(),
});

export type TokenClaims = { sub: string; role: Viewer['role']; organization_id?: string | null };

export type VerifiedToken = { viewer: Viewer; /** From `exp`; a WebSocket is closed then. */ expiresAt: Date | null };

export type TokenVerifier = (token: string) => Promise<VerifiedToken>;

/** Verified tokens remembered, at most (about 3 MB of 300-byte tokens). */
const VERIFIED_CAPACITY = 10_000;
/** A remembered verification is redone after this long, so a key dropped from a JWKS stops being honoured. */
const VERIFIED_TTL_MS = 5 * 60_000;

export function createTokenVerifier(auth: AuthConfig, secret?: Uint8Array): TokenVerifier {
  let key: KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (auth.verify.kind === 'jwks') {
    key = createRemoteJWKSet(new URL(auth.verify.url));
    algorithms = ['RS256'];
  } else {
    const bytes = auth.verify.kind === 'hs256' ? new TextEncoder().encode(auth.verify.secret) : secret;
    if (!bytes) throw new Error('development auth needs its generated secret');
    // Imported once: a raw secret is imported again on every verification.
    key = createSecretKey(bytes);
    algorithms = ['HS256'];
  }
  const options = {
    algorithms,
    ...(auth.issuer ? { issuer: auth.issuer } : {}),
    ...(auth.audience ? { audience: auth.audience } : {}),
    // A token that never expires, or claims to be issued in the future, is refused.
    requiredClaims: ['exp', 'iat'],
    maxTokenAge: auth.maxLifetimeSeconds,
    clockTolerance: auth.clockSkewSeconds,
  };

  // Successes only, keyed by the whole token (signature included): a changed
  // or forged token is never found, and a refusal is decided by jose each time.
  const verified = new Map<string, { result: VerifiedToken; until: number }>();
  const verify: TokenVerifier = async (token) => {
    let payload: unknown;
    try {
      // The overloads differ only in the key's type.
      ({ payload } = await jwtVerify(token, key as KeyObject, options));
    } catch (error) {
      // An unreachable JWKS is our outage, not the caller's bad token: let it surface as unexpected.
      if (error instanceof joseErrors.JWKSTimeout || !(error instanceof joseErrors.JOSEError)) throw error;
      throw new ServiceError('UNAUTHENTICATED', describeJoseError(error));
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) {
      const issue = claims.error.issues[0]!;
      throw new ServiceError('UNAUTHENTICATED', `the token's ${issue.path.join('.')} claim is invalid: ${issue.message}`);
    }
    // jose checks the age since iat; a token must not be made to outlive the maximum either.
    const { exp, iat } = payload as { exp: number; iat: number };
    if (exp - iat > auth.maxLifetimeSeconds) {
      throw new ServiceError('UNAUTHENTICATED', `the token's exp claim is more than ${auth.maxLifetimeSeconds} s after its iat (the longest lifetime accepted)`);
    }
    const result = {
      viewer: { userId: claims.data.sub, role: claims.data.role, organizationId: claims.data.organization_id ?? null },
      expiresAt: new Date(exp * 1000),
    };
    // Never past exp or the longest lifetime (without the clock skew: past them, jose decides again).
    const until = Math.min(exp * 1000, (iat + auth.maxLifetimeSeconds) * 1000, Date.now() + VERIFIED_TTL_MS);
    if (verified.size >= VERIFIED_CAPACITY) verified.delete(verified.keys().next().value!);
    verified.set(token, { result, until });
    return result;
  };

  return async (token) => {
    const known = verified.get(token);
    if (known && Date.now() < known.until) return known.result;
    if (known) verified.delete(token);
    return verify(token);
  };
}

function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) {
    return error.claim === 'iat' ? 'the token is older than the longest lifetime accepted (its iat claim)' : 'the token has expired';
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `the token's ${error.claim} claim is not accepted`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'the token is signed with an algorithm this server does not accept';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'no key of the configured JWKS matches the token (kid or algorithm)';
  return 'the token is not a valid JWT';
}

export async function signToken(
  secret: Uint8Array,
  claims: TokenClaims,
  options: { expiresIn?: string; issuer?: string; audience?: string } = {},
): Promise<string> {
  let jwt = new SignJWT({ role: claims.role, organization_id: claims.organization_id ?? null })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '30d');
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(secret);
}

/**
 * The embedded mode's signing secret: kept in the data folder so printed
 * tokens survive a restart; a fresh one for an in-memory database. With
 * `create: false`, only an existing one (a script signing for a running service).
 */
export async function developmentSecret(dataDir: string | undefined, options: { create?: boolean } = {}): Promise<Uint8Array> {
  const { create = true } = options;
  if (!dataDir || dataDir.startsWith('memory://')) {
    if (create) return randomBytes(32);
    throw new Error('an in-memory service keeps its development secret to itself');
  }
  const file = path.join(path.resolve(dataDir), 'development-jwt-secret');
  try {
    return Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    // A tool signing for a running service must use that service's secret, not make one.
    if (!create) throw new Error(`no development secret in ${file}: has the service been started with this data folder?`);
  }
  const secret = randomBytes(32);
  await writeFile(file, secret.toString('base64url'), { mode: 0o600 });
  return secret;
}
