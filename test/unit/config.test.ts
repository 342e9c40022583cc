import { describe, expect, it } from 'vitest';
import { ConfigError, describeVariables, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      host: '0.0.0.0',
      port: 50051,
      databaseUrl: undefined,
      dataDir: './.data',
      dbTimeoutMs: 250,
      failureMode: 'open',
      timezone: 'UTC',
      logLevel: 'info',
    });
  });

  it('names every bad variable in one error', () => {
    let err: unknown;
    try {
      loadConfig({
        QUOTA_PORT: 'abc',
        QUOTA_FAILURE_MODE: 'maybe',
        QUOTA_TIMEZONE: 'Mars/Base',
        DATABASE_URL: 'mysql://x',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as ConfigError).message;
    for (const name of ['QUOTA_PORT', 'QUOTA_FAILURE_MODE', 'QUOTA_TIMEZONE', 'DATABASE_URL'])
      expect(text).toContain(name);
  });

  it('lists every variable with its default for --help', () => {
    const help = describeVariables();
    for (const name of [
      'QUOTA_PORT',
      'QUOTA_HOST',
      'DATABASE_URL',
      'QUOTA_DATA_DIR',
      'QUOTA_DB_TIMEOUT_MS',
      'QUOTA_FAILURE_MODE',
      'QUOTA_TIMEZONE',
      'LOG_LEVEL',
    ]) {
      expect(help).toContain(name);
    }
    expect(help).toMatch(/QUOTA_DB_TIMEOUT_MS .*default: 250/);
  });
});
