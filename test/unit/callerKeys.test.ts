import { pino } from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { ApiKeyHasher } from '../../src/limits/ApiKeyHasher.js';
import { CallerKeys } from '../../src/limits/CallerKeys.js';
import { LimitService } from '../../src/limits/LimitService.js';
import type { LimitStore, RuleStore, SecretStore } from '../../src/limits/ports.js';
import { RuleAdmin } from '../../src/limits/RuleAdmin.js';
import { RuleCache } from '../../src/limits/RuleCache.js';
import type { CounterRequest, RateLimitRule } from '../../src/limits/types.js';
import { validateRule } from '../../src/limits/validateRule.js';
import { silentLogger } from '../../src/log.js';
import { callerKeys, domainRule, limitInput, TEST_SECRET } from '../support/domain.js';
import { fieldOf } from '../support/fieldOf.js';

const HASH = /^hmac-sha256:[A-Za-z0-9_-]{8}:[A-Za-z0-9_-]{43}$/;

/** Rules in memory, as a store keeps them. */
function memoryRules(initial: RateLimitRule[] = []): RuleStore & { rules: RateLimitRule[] } {
  const store = {
    rules: [...initial],
    list: async (scope?: string) => store.rules.filter((r) => !scope || r.scope === scope),
    upsert: async (r: RateLimitRule) => {
      store.rules = [...store.rules.filter((x) => x.name !== r.name), r];
      return r;
    },
    setEnabled: async () => {
      throw new Error('unused');
    },
    delete: async () => undefined,
    replaceMatch: async (name: string, from: string, to: string) => {
      const rule = store.rules.find((r) => r.name === name && r.match === from);
      if (!rule) return false;
      store.rules = store.rules.map((r) => (r === rule ? { ...r, match: to } : r));
      return true;
    },
  };
  return store;
}

describe('ApiKeyHasher', () => {
  it('hashes a key the same way under one secret, and otherwise under another', () => {
    const a = new ApiKeyHasher(TEST_SECRET);
    const b = new ApiKeyHasher(Buffer.alloc(32, 8));
    expect(a.hash('key-1')).toMatch(HASH);
    expect(a.hash('key-1')).toBe(new ApiKeyHasher(Buffer.from(TEST_SECRET)).hash('key-1'));
    expect(a.hash('key-1')).not.toBe(a.hash('key-2'));
    expect(a.hash('key-1')).not.toBe(b.hash('key-1'));
    expect(a.hash('key-1')).not.toContain('key-1');
    expect(a.isCurrent(a.hash('k'))).toBe(true);
    expect(a.isCurrent(b.hash('k'))).toBe(false);
    expect(ApiKeyHasher.isHash(b.hash('k'))).toBe(true);
    expect(ApiKeyHasher.isHash('k')).toBe(false);
  });

  it('refuses a secret shorter than 32 bytes', () => {
    expect(() => new ApiKeyHasher(Buffer.alloc(31))).toThrow(/32 bytes/);
  });

  it('uses the configured secret, else the stored one, generating it only once', async () => {
    const stored = new Map<string, Buffer>();
    const store: SecretStore = {
      getOrCreate: async (name, candidate) => {
        if (!stored.has(name)) stored.set(name, Buffer.from(candidate));
        return stored.get(name)!;
      },
    };
    const first = await ApiKeyHasher.load(undefined, store);
    const second = await ApiKeyHasher.load(undefined, store);
    expect(second.hash('k')).toBe(first.hash('k'));
    expect(stored.size).toBe(1);
    const configured = await ApiKeyHasher.load('c'.repeat(32), store);
    expect(configured.hash('k')).toBe(new ApiKeyHasher(Buffer.from('c'.repeat(32))).hash('k'));
    expect(configured.hash('k')).not.toBe(first.hash('k'));
  });
});

describe('CallerKeys', () => {
  const keys = callerKeys();
  const hasher = new ApiKeyHasher(TEST_SECRET);

  it('keys a call by its canonical IP and the hash of its API key, and leaves the rest', () => {
    const keyed = keys.forCall(
      limitInput({ ip: '::ffff:192.000.002.077', apiKey: 'secret-key', userId: 'u' }),
    );
    expect(keyed).toMatchObject({
      ip: '192.0.2.77',
      apiKey: hasher.hash('secret-key'),
      userId: 'u',
    });
    expect(keys.forCall(limitInput({ ip: '2001:db8::1' }))!.ip).toBe('2001:db8::/64');
    expect(fieldOf(() => keys.forCall(limitInput({ ip: 'not-an-ip' })))).toBe('ip');
  });

  it('keys IP addresses before its secret is known, but no API key', () => {
    const early = new CallerKeys(64);
    expect(early.ready).toBe(false);
    expect(early.forCall(limitInput({ ip: '::ffff:10.0.0.1' }))).toMatchObject({ ip: '10.0.0.1' });
    expect(early.forCall(limitInput({ ip: '10.0.0.1', apiKey: 'k' }))).toBeNull();
    expect(fieldOf(() => early.forCall(limitInput({ ip: 'x', apiKey: 'k' })))).toBe('ip');
    expect(() => early.forStore(domainRule({ scope: 'api_key', match: 'k' }))).toThrow(
      StoreUnavailableError,
    );
    early.useHasher(hasher);
    expect(early.forCall(limitInput({ apiKey: 'k' }))!.apiKey).toBe(hasher.hash('k'));
  });

  it('stores an exact API key as its hash, keeps a current hash, refuses another secret', () => {
    const rule = domainRule({ scope: 'api_key', match: 'secret-key' });
    const stored = keys.forStore(rule);
    expect(stored.match).toBe(hasher.hash('secret-key'));
    expect(keys.forStore(stored)).toEqual(stored);
    expect(keys.forStore(domainRule({ scope: 'api_key' })).match).toBe('*');
    const other = new ApiKeyHasher(Buffer.alloc(32, 9)).hash('secret-key');
    expect(fieldOf(() => keys.forStore({ ...rule, match: other }))).toBe('rule.match');
    expect(keys.forStore(domainRule({ scope: 'user', match: 'bob' })).match).toBe('bob');
  });

  it('indexes an IP rule by the network of its address, at the prefix configured', () => {
    const rule = validateRule(domainRule({ scope: 'ip', match: '2001:DB8:0:0:1::1' }));
    expect(rule.match).toBe('2001:db8::1:0:0:1');
    expect(keys.forIndex(rule)).toBe('2001:db8::/64');
    expect(callerKeys(128).forIndex(rule)).toBe('2001:db8::1:0:0:1');
  });
});

describe('validateRule with an IP match', () => {
  it('stores the canonical address and refuses what is not one address', () => {
    expect(validateRule(domainRule({ scope: 'ip', match: '192.000.002.077' })).match).toBe(
      '192.0.2.77',
    );
    expect(validateRule(domainRule({ scope: 'ip', match: '::ffff:192.0.2.77' })).match).toBe(
      '192.0.2.77',
    );
    expect(validateRule(domainRule({ scope: 'ip', match: '' })).match).toBe('*');
    expect(fieldOf(() => validateRule(domainRule({ scope: 'ip', match: 'office' })))).toBe(
      'rule.match',
    );
    expect(fieldOf(() => validateRule(domainRule({ scope: 'ip', match: '10.0.0.0/8' })))).toBe(
      'rule.match',
    );
  });
});

describe('rules keyed by CallerKeys', () => {
  const keys = callerKeys();

  it('match a call however its address is written, and an API key by its hash', async () => {
    const store = memoryRules();
    const cache = new RuleCache(store, silentLogger(), 30_000, (r) => keys.forIndex(r));
    const admin = new RuleAdmin(store, cache, keys);
    await admin.upsert(domainRule({ name: 'ip-one', scope: 'ip', match: '192.000.002.077' }));
    await admin.upsert(domainRule({ name: 'ip-net', scope: 'ip', match: '2001:db8::1' }));
    await admin.upsert(domainRule({ name: 'key-vip', scope: 'api_key', match: 'vip-key' }));
    expect(JSON.stringify(store.rules)).not.toContain('vip-key');
    const names = (i: Parameters<CallerKeys['forCall']>[0]) =>
      cache.match(keys.forCall(i)!).map((m) => m.rule.name);
    expect(names(limitInput({ ip: '::ffff:192.0.2.77' }))).toEqual(['ip-one']);
    expect(names(limitInput({ ip: '2001:db8::ffff:1' }))).toEqual(['ip-net']);
    expect(names(limitInput({ ip: '2001:db8:0:1::1' }))).toEqual([]);
    expect(names(limitInput({ apiKey: 'vip-key' }))).toEqual(['key-vip']);
    expect(names(limitInput({ apiKey: 'other' }))).toEqual([]);
  });

  it('leave out, with one warning, a stored match that can apply to no call', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const other = new ApiKeyHasher(Buffer.alloc(32, 9)).hash('k');
    const store = memoryRules([
      domainRule({ name: 'ip-word', scope: 'ip', match: 'office' }),
      domainRule({ name: 'key-old', scope: 'api_key', match: other }),
      domainRule({ name: 'key-raw', scope: 'api_key', match: 'raw-key' }),
      domainRule({ name: 'ip-default', scope: 'ip' }),
    ]);
    const cache = new RuleCache(store, logger, 30_000, (r) => keys.forIndex(r));
    await cache.reload();
    await cache.reload();
    expect(
      cache.match(keys.forCall(limitInput({ ip: '10.0.0.1' }))!).map((m) => m.rule.name),
    ).toEqual(['ip-default']);
    expect(lines).toHaveLength(3);
    expect(lines.join('')).not.toContain('raw-key');
  });

  it('hash the raw API keys that rules written earlier hold, once', async () => {
    const store = memoryRules([
      domainRule({ name: 'key-raw', scope: 'api_key', match: 'raw-key' }),
      domainRule({ name: 'key-default', scope: 'api_key' }),
      domainRule({ name: 'user', scope: 'user', match: 'raw-user' }),
    ]);
    const cache = new RuleCache(store, silentLogger(), 30_000, (r) => keys.forIndex(r));
    const admin = new RuleAdmin(store, cache, keys);
    expect(await admin.hashRawApiKeyMatches()).toEqual(['key-raw']);
    expect(await admin.hashRawApiKeyMatches()).toEqual([]);
    expect(store.rules.find((r) => r.name === 'key-raw')!.match).toBe(
      new ApiKeyHasher(TEST_SECRET).hash('raw-key'),
    );
    expect(store.rules.find((r) => r.name === 'user')!.match).toBe('raw-user');
  });
});

describe('LimitService', () => {
  it('sends the store hashes and canonical IPs, and shows the caller the key it sent', async () => {
    const keys = callerKeys();
    const seen: { counters: readonly CounterRequest[]; idem: string | null }[] = [];
    const store: LimitStore = {
      together: (submit) => submit(),
      check: async (counters, _hits, idem) => {
        seen.push({ counters, idem });
        return {
          allowed: true,
          replayed: false,
          retryAfterMs: 0,
          limits: counters.map((c) => ({
            rule: c.rule,
            key: c.key,
            shadow: false,
            limit: c.limit,
            remaining: 1,
            windowMs: 60_000,
            resetAfterMs: 1,
            exceeded: false,
          })),
        };
      },
      replay: async () => null,
    };
    const rules = memoryRules([
      domainRule({ name: 'per-key', scope: 'api_key' }),
      domainRule({ name: 'per-ip', scope: 'ip' }),
    ]);
    const cache = new RuleCache(rules, silentLogger(), 30_000, (r) => keys.forIndex(r));
    await cache.reload();
    const service = new LimitService(
      cache,
      store,
      { factorFor: () => 1 },
      { failureMode: 'open', timezone: 'UTC', keys },
    );
    const answer = await service.check(
      limitInput({ apiKey: 'raw-key-123', ip: '192.000.002.077', requestId: 'r-1' }),
    );
    expect(JSON.stringify(seen)).not.toContain('raw-key-123');
    expect(seen[0]!.counters.map((c) => c.key).sort()).toEqual(
      [new ApiKeyHasher(TEST_SECRET).hash('raw-key-123'), '192.0.2.77'].sort(),
    );
    expect(answer.limits.map((l) => [l.rule, l.key]).sort()).toEqual([
      ['per-ip', '192.0.2.77'],
      ['per-key', 'raw-key-123'],
    ]);
    await expect(service.check(limitInput({ ip: '192.0.2' }))).rejects.toMatchObject({
      field: 'ip',
    });
  });

  it('answers the failure mode for an API key while the secret is not loaded', async () => {
    const rules = memoryRules([domainRule({ name: 'per-key', scope: 'api_key' })]);
    const early = new CallerKeys(64);
    const cache = new RuleCache(rules, silentLogger(), 30_000, (r) => early.forIndex(r));
    await cache.reload();
    const store: LimitStore = {
      together: (submit) => submit(),
      check: async () => {
        throw new Error('not to be asked');
      },
      replay: async () => {
        throw new Error('not to be asked');
      },
    };
    const service = new LimitService(
      cache,
      store,
      { factorFor: () => 1 },
      { failureMode: 'closed', timezone: 'UTC', keys: early },
    );
    expect(await service.check(limitInput({ apiKey: 'k' }))).toMatchObject({
      allowed: false,
      degraded: true,
    });
  });
});
