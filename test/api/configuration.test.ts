/**
 * The configuration refuses to start with a bad value, naming every bad
 * variable at once; empty variables mean unset.
 */
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('configuration', () => {
  const refused = (environment: Record<string, string>) => {
    try {
      loadConfig(environment);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`loadConfig accepted ${JSON.stringify(environment)}`);
  };
  const secret = 'x'.repeat(32);

  test.each([
    [{ PORT: 'abc' }, /PORT: .*expected number/],
    [{ PORT: '70000' }, /PORT: .*65535/],
    [{ PORT: '80.5' }, /PORT: .*int/],
    [{ DATABASE_POOL_SIZE: '0' }, /DATABASE_POOL_SIZE: .*1/],
    [{ DATABASE_PREPARED_STATEMENTS: 'sometimes' }, /DATABASE_PREPARED_STATEMENTS: .*"named"/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL: .*"info"/],
    [{ DATABASE_URL: 'mysql://localhost/tracker', JWT_SECRET: secret }, /DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/],
    [{ LISTEN_DATABASE_URL: 'localhost:5432' }, /LISTEN_DATABASE_URL: must be a postgres/],
    [{ JWT_SECRET: 'too-short' }, /JWT_SECRET: must be at least 32 characters/],
    [{ JWKS_URL: 'not a url' }, /JWKS_URL: must be an http\(s\) URL/],
    [{ JWKS_URL: 'file:///etc/passwd' }, /JWKS_URL: must be an http\(s\) URL/],
    [{ DEMO_DATA: 'yes' }, /DEMO_DATA: must be true or false/],
    [{ METRICS_ROLLUP_INTERVAL_SECONDS: '-1' }, /METRICS_ROLLUP_INTERVAL_SECONDS: .*0/],
    [{ STAGE_ESTIMATES_REFRESH_SECONDS: '-1' }, /STAGE_ESTIMATES_REFRESH_SECONDS: .*0/],
    [{ STAGE_ESTIMATES_WINDOW_DAYS: '0' }, /STAGE_ESTIMATES_WINDOW_DAYS: .*1/],
    [{ RETENTION_DAYS: '-1' }, /RETENTION_DAYS: .*0/],
    [{ RETENTION_DAYS: '1.5' }, /RETENTION_DAYS: .*int/],
    [{ RETENTION_BATCH_SIZE: '0' }, /RETENTION_BATCH_SIZE: .*1/],
    [{ RETENTION_BATCH_SIZE: '100000' }, /RETENTION_BATCH_SIZE: .*10000/],
    [{ RETENTION_INTERVAL_SECONDS: '0' }, /RETENTION_INTERVAL_SECONDS: .*1/],
    [{ METRICS_GAUGE_MAX_AGE_SECONDS: '0' }, /METRICS_GAUGE_MAX_AGE_SECONDS: .*1/],
    [{ JWT_SECRET: secret, JWKS_URL: 'https://auth.example.test/jwks.json' }, /set JWT_SECRET or JWKS_URL, not both/],
    [{ DEMO_PIPELINE: 'on' }, /DEMO_PIPELINE: must be true or false/],
    // The demo pipeline with a server database: only when asked, with the demo users and a secret to sign its worker token.
    [{ DEMO_PIPELINE: 'true', DATABASE_URL: 'postgres://db.example.test/tracker', JWT_SECRET: secret }, /DEMO_PIPELINE=true needs the demo users/],
    [{ DEMO_PIPELINE: 'true', DATABASE_URL: 'postgres://db.example.test/tracker', JWKS_URL: 'https://auth.example.test/jwks.json', DEMO_DATA: 'true' }, /with JWKS_URL run `npm run demo` with TOKEN/],
    [{ DEMO_PIPELINE: 'true', DEMO_DATA: 'false' }, /DEMO_PIPELINE=true needs the demo users/],
  ] as [Record<string, string>, RegExp][])('%j is refused with a message naming it', (environment, message) => {
    expect(refused(environment)).toMatch(message);
  });

  test('every bad variable is named at once', () => {
    const message = refused({ PORT: 'abc', DEMO_DATA: 'maybe' });
    expect(message).toMatch(/PORT: /);
    expect(message).toMatch(/DEMO_DATA: /);
  });

  test('a server database needs JWT_SECRET or JWKS_URL; an empty one counts as unset', () => {
    for (const environment of [
      { DATABASE_URL: 'postgres://db.example.test/tracker' } as Record<string, string>,
      { DATABASE_URL: 'postgres://db.example.test/tracker', JWT_SECRET: '', JWKS_URL: '' },
    ]) {
      const message = refused(environment);
      expect(message).toMatch(/JWT_SECRET or JWKS_URL is required with DATABASE_URL/);
    }
  });

  test('the demo pipeline is off unless DEMO_PIPELINE=true, with a server database too', () => {
    expect(loadConfig({}).demoPipeline).toBe(false);
    expect(loadConfig({ DEMO_PIPELINE: 'true' }).demoPipeline).toBe(true);
    const server = { DATABASE_URL: 'postgres://db.example.test/tracker', JWT_SECRET: secret, DEMO_DATA: 'true' };
    expect(loadConfig(server).demoPipeline).toBe(false);
    expect(loadConfig({ ...server, DEMO_PIPELINE: 'true' }).demoPipeline).toBe(true);
  });

  test('retention: 30 days, batches of 500, hourly by default; 0 days keeps everything', () => {
    expect(loadConfig({ RETENTION_DAYS: '', RETENTION_BATCH_SIZE: '', RETENTION_INTERVAL_SECONDS: '' }).retention).toEqual({
      days: 30,
      batchSize: 500,
      intervalMs: 3_600_000,
    });
    expect(loadConfig({ RETENTION_DAYS: '0', RETENTION_BATCH_SIZE: '2', RETENTION_INTERVAL_SECONDS: '1' }).retention).toEqual({
      days: 0,
      batchSize: 2,
      intervalMs: 1_000,
    });
  });

  test('empty variables mean unset: the defaults apply', () => {
    const config = loadConfig({ PORT: '', LOG_LEVEL: '', METRICS_ROLLUP_INTERVAL_SECONDS: '', STAGE_ESTIMATES_WINDOW_DAYS: '', DATABASE_URL: '', JWT_SECRET: '', JWKS_URL: '' });
    expect(config).toMatchObject({
      http: { port: 4000 },
      logLevel: 'info',
      metricsRollupIntervalMs: 300_000,
      stageEstimates: { refreshIntervalMs: 300_000, windowDays: 7 },
      database: { kind: 'pglite' },
      auth: { verify: { kind: 'development' } },
    });
    expect(loadConfig({ JWT_SECRET: '', JWKS_URL: 'https://auth.example.test/jwks.json' }).auth.verify).toEqual({
      kind: 'jwks',
      url: 'https://auth.example.test/jwks.json',
    });
  });

  test('stall detection: factor 2 and a check every 30 s by default; 0 turns the check off; a bad value is named', () => {
    expect(loadConfig({}).stalls).toEqual({ factor: 2, checkIntervalMs: 30_000 });
    expect(loadConfig({ STALL_FACTOR: '1.5', STALL_CHECK_INTERVAL_SECONDS: '0' }).stalls).toEqual({ factor: 1.5, checkIntervalMs: 0 });
    expect(() => loadConfig({ STALL_FACTOR: '0' })).toThrow(/STALL_FACTOR/);
    expect(() => loadConfig({ STALL_CHECK_INTERVAL_SECONDS: '0.01' })).toThrow(/STALL_CHECK_INTERVAL_SECONDS/);
  });
});
