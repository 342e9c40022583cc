import { describe, expect, it } from 'vitest';
import { ConfigError, describeVariables, loadConfig } from '../../src/config.js';

function problems(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return '';
}

describe('API-key and IP configuration', () => {
  it('defaults to a secret kept in the database and IPv6 counted per /64', () => {
    expect(loadConfig({})).toMatchObject({ apiKeySecret: undefined, ipv6PrefixBits: 64 });
    expect(describeVariables()).toMatch(/QUOTA_IPV6_PREFIX .*default: 64/);
    expect(describeVariables()).toMatch(/QUOTA_API_KEY_SECRET .*default: unset/);
  });

  it('takes a prefix of 32 to 128 bits', () => {
    expect(loadConfig({ QUOTA_IPV6_PREFIX: '56' }).ipv6PrefixBits).toBe(56);
    for (const bad of ['31', '129', '64.5', 'x'])
      expect(problems({ QUOTA_IPV6_PREFIX: bad })).toContain('QUOTA_IPV6_PREFIX');
  });

  it('takes a secret of at least 32 bytes and never prints it', () => {
    const secret = 's'.repeat(32);
    expect(loadConfig({ QUOTA_API_KEY_SECRET: secret }).apiKeySecret).toBe(secret);
    const message = problems({ QUOTA_API_KEY_SECRET: 'short-secret-value' });
    expect(message).toContain('QUOTA_API_KEY_SECRET');
    expect(message).not.toContain('short-secret-value');
  });
});
