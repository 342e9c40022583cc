import { describe, expect, it } from 'vitest';
import { AttackBlocks, BlockIndex } from '../../src/audit/AttackBlocks.js';
import { apiKeyPrefix } from '../../src/audit/apiKeyPrefix.js';
import { AuditRecorder } from '../../src/audit/AuditRecorder.js';
import type {
  AuditStore,
  IpKeys,
  PendingCounts,
  PendingViolation,
  Sighting,
} from '../../src/audit/ports.js';
import {
  validateStatsFilter,
  validateViolationFilter,
} from '../../src/audit/validateAuditFilter.js';
import { ATTACK_BLOCK_RULE } from '../../src/core/decisions.js';
import { ValidationError } from '../../src/errors.js';
import { ApiKeyHasher } from '../../src/limits/ApiKeyHasher.js';
import { commandEvent, denial, limitEvent, outcome } from '../support/auditEvents.js';

/**
 * An AuditStore port in memory with the contract's batch ids. `failing`: writes throw;
 * `commitThenFail`: a write commits and then throws, as one the caller gave up on that the
 * server committed. Its clock is the host's plus `clockOffsetMs`.
 */
class MemoryAuditStore implements AuditStore {
  violations: PendingViolation[] = [];
  sightings: Sighting[] = [];
  stats: PendingCounts[] = [];
  readonly batchIds = new Set<string>();
  failing = false;
  commitThenFail = false;
  /** While set, batch writes wait for it. */
  gate: Promise<void> | undefined;
  clockOffsetMs = 0;
  constructor(public now: () => number = Date.now) {}
  async appendViolations(id: string, rows: readonly PendingViolation[]) {
    return this.batch(id, () => this.violations.push(...rows));
  }
  async recordSightings(rows: readonly Sighting[]) {
    this.check();
    this.sightings.push(...rows);
  }
  async addStats(id: string, rows: readonly PendingCounts[]) {
    return this.batch(id, () => this.stats.push(...rows));
  }
  async clock() {
    return this.now() + this.clockOffsetMs;
  }
  private async batch(id: string, write: () => void): Promise<boolean> {
    await this.gate;
    this.check();
    if (this.batchIds.has(id)) return false;
    this.batchIds.add(id);
    write();
    if (this.commitThenFail) throw new Error('gave up waiting');
    return true;
  }
  private check() {
    if (this.failing) throw new Error('write refused');
  }
}

/** A recorder on `store`, whose clock is the recorder's `now` (plus its offset). */
function recorder(store: MemoryAuditStore, enabled = true, now = () => 10_000, bufferSize = 100) {
  store.now = now;
  return new AuditRecorder(store, {
    enabled,
    bufferSize,
    windowMs: 60_000,
    attackIdentities: 3,
    now,
  });
}
const sum = (rows: readonly { count: number }[]) => rows.reduce((n, r) => n + r.count, 0);
const denied = (rows: readonly PendingCounts[], name: string) =>
  rows.filter((s) => s.name === name).reduce((n, s) => n + s.denied, 0);

describe('AuditRecorder', () => {
  it('records each non-shadow rule that denied, not shadow rules, replays or the failure mode', async () => {
    const store = new MemoryAuditStore();
    const r = recorder(store);
    r.decided(
      limitEvent({
        allowed: false,
        rules: [
          outcome({ rule: 'a', exceeded: true }),
          outcome({ rule: 'b', scope: 'ip', key: '192.0.2.1', exceeded: true }),
          outcome({ rule: 'sh', shadow: true, exceeded: true }),
          outcome({ rule: 'c' }),
        ],
      }),
    );
    r.decided(denial('a', { replayed: true }));
    r.decided(limitEvent({ degraded: true, allowed: false, rules: [outcome({ rule: 'a' })] }));
    r.decided(limitEvent({ rules: [outcome({ rule: 'sh', shadow: true, exceeded: true })] }));
    await r.flushViolations();
    expect(store.violations.map((v) => [v.rule, v.count]).sort()).toEqual([
      ['a', 1],
      ['b', 1],
    ]);
  });

  it('records a command denied for its quota, not one denied for its host load, which statistics still count', async () => {
    const store = new MemoryAuditStore();
    const r = recorder(store);
    r.decided(
      commandEvent({
        allowed: false,
        reason: 'QUOTA_EXCEEDED: daily',
        rules: [
          outcome({ rule: 'command:shell', scope: 'command', key: 'alice/shell', exceeded: true }),
        ],
      }),
    );
    r.decided(commandEvent({ allowed: false, reason: 'SYSTEM_OVERLOADED' }));
    r.decided(commandEvent({ allowed: false, degraded: true, reason: 'QUOTA_UNAVAILABLE' }));
    await r.flushViolations();
    await r.flushStats();
    expect(store.violations.map((v) => [v.source, v.rule, v.key, v.reason])).toEqual([
      ['command_quota', 'command:shell', 'alice/shell', 'QUOTA_EXCEEDED: daily'],
    ]);
    const command = store.stats.filter((s) => s.kind === 'command');
    expect(denied(command, '*')).toBe(2);
    expect(denied(command, 'shell')).toBe(2);
  });

  it('switched off records no violations or sightings, and still counts statistics', async () => {
    const store = new MemoryAuditStore();
    const r = recorder(store, false);
    r.decided(denial('a', { caller: { ip: '192.0.2.1', userId: 'x' } }));
    r.decided(denial('a', { caller: { ip: '192.0.2.1', userId: 'y' } }));
    await r.flushViolations();
    await r.flushStats();
    expect(store.violations).toEqual([]);
    expect(store.sightings).toEqual([]);
    expect(store.stats.find((s) => s.name === 'a')!.denied).toBe(2);
  });

  it('keeps the chunks of a failed flush as they were and sends them first, new denials apart', async () => {
    const store = new MemoryAuditStore();
    const r = recorder(store);
    for (let i = 0; i < 5; i++) r.decided(denial('a', { caller: { userId: `u${i % 2}` } }));
    store.failing = true;
    await expect(r.flushViolations()).rejects.toThrow('write refused');
    await expect(r.flushStats()).rejects.toThrow('write refused');
    expect([r.pendingViolations.rows, r.violations.size]).toEqual([2, 0]);
    for (let i = 0; i < 3; i++) r.decided(denial('a'));
    // Still failing: nothing more is taken; the new denials wait in the live buffer.
    await expect(r.flushViolations()).rejects.toThrow('write refused');
    expect([r.pendingViolations.rows, r.violations.size]).toEqual([2, 1]);
    store.failing = false;
    await r.flushViolations();
    await r.flushStats();
    // The kept chunk first, as it was (u0 3, u1 2), then the new denials (alice 3).
    expect(store.violations.map((v) => [v.userId, v.count])).toEqual([
      ['u0', 3],
      ['u1', 2],
      ['alice', 3],
    ]);
    expect(denied(store.stats, 'a')).toBe(8);
    expect([r.violations.size, r.pendingViolations.size, r.pendingStats.size]).toEqual([0, 0, 0]);
  });

  it('counts a write reported failed that committed once: sent again under its id, it is skipped', async () => {
    const store = new MemoryAuditStore();
    const r = recorder(store);
    for (let i = 0; i < 7; i++) r.decided(denial('a'));
    store.commitThenFail = true;
    await expect(r.flushViolations()).rejects.toThrow('gave up waiting');
    await expect(r.flushStats()).rejects.toThrow('gave up waiting');
    store.commitThenFail = false;
    for (let i = 0; i < 3; i++) r.decided(denial('a'));
    await r.flushViolations();
    await r.flushStats();
    expect(sum(store.violations)).toBe(10);
    expect(denied(store.stats, 'a')).toBe(10);
    expect(r.pendingViolations.alreadyWritten + r.pendingStats.alreadyWritten).toBe(2);
  });

  it('counts rows waiting from a failed write against the buffer: new ones fold, none are lost', async () => {
    const store = new MemoryAuditStore();
    const r = recorder(store, true, () => 10_000, 3);
    for (let i = 0; i < 3; i++) r.decided(denial('a', { caller: { userId: `u${i}` } }));
    store.failing = true;
    await expect(r.flushViolations()).rejects.toThrow();
    for (let i = 3; i < 6; i++) r.decided(denial('a', { caller: { userId: `u${i}` } }));
    expect(r.violations.folded).toBe(3);
    store.failing = false;
    await r.flushViolations();
    expect(sum(store.violations)).toBe(6);
    expect(store.violations.filter((v) => v.key === '')).toMatchObject([{ count: 3 }]);
  });

  it('keeps full detail for denials that come while a flush is being written', async () => {
    const store = new MemoryAuditStore();
    const r = recorder(store, true, () => 10_000, 3);
    for (let i = 0; i < 3; i++) r.decided(denial('a', { caller: { userId: `u${i}` } }));
    let release = () => undefined as void;
    store.gate = new Promise((resolve) => (release = resolve));
    const flushing = r.flushViolations();
    // Taken, and being written.
    while (r.pendingViolations.rows === 0) await new Promise((resolve) => setImmediate(resolve));
    for (let i = 3; i < 6; i++) r.decided(denial('a', { caller: { userId: `u${i}` } }));
    expect(r.violations.folded).toBe(0);
    release();
    await flushing;
    await r.flushViolations();
    expect(store.violations.map((v) => v.userId)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5']);
  });

  it('stamps violations, sightings and statistics hours with the store clock', async () => {
    let now = Date.UTC(2026, 0, 1, 10, 59, 0);
    const store = new MemoryAuditStore();
    // The database's clock is 90 s ahead of this host's: its hour has turned already.
    store.clockOffsetMs = 90_000;
    const r = recorder(store, true, () => now);
    await r.syncClock();
    expect(r.clockOffsetMs).toBe(90_000);
    r.decided(denial('a', { caller: { ip: '192.0.2.1', userId: 'x' }, at: now }));
    r.decided(denial('a', { caller: { ip: '192.0.2.1', userId: 'y' }, at: now }));
    now += 1000;
    await r.flushViolations();
    await r.flushStats();
    const dbAt = Date.UTC(2026, 0, 1, 11, 0, 30);
    expect(store.violations.map((v) => [v.firstAtMs, v.lastAtMs])).toEqual([
      [dbAt, dbAt],
      [dbAt, dbAt],
    ]);
    expect(store.sightings.map((v) => v.lastSeenMs)).toEqual([dbAt, dbAt]);
    expect(new Set(store.stats.map((s) => s.hourMs))).toEqual(new Set([Date.UTC(2026, 0, 1, 11)]));
  });

  it('writes the sightings of an IP with several identities, from every call admitted or not', async () => {
    const store = new MemoryAuditStore();
    const r = recorder(store);
    const hash = new ApiKeyHasher(Buffer.alloc(32, 3)).hash('k');
    r.decided(limitEvent({ caller: { ip: '192.0.2.9', userId: 'a' }, at: 9000 }));
    r.decided(
      denial('x', { caller: { ip: '192.0.2.9', userId: 'b', apiKeyHash: hash }, at: 9500 }),
    );
    r.decided(
      limitEvent({ caller: { ip: '192.0.2.10', userId: 'a', apiKeyHash: hash }, at: 9000 }),
    );
    await r.flushViolations();
    expect(store.sightings.map((s) => [s.ip, s.identity]).sort()).toEqual([
      ['192.0.2.9', `api_key:${apiKeyPrefix(hash)}`],
      ['192.0.2.9', 'user:a'],
      ['192.0.2.9', 'user:b'],
    ]);
  });

  it('records no sighting from a call an attack block denied', async () => {
    const store = new MemoryAuditStore();
    const r = recorder(store);
    const block = outcome({
      rule: ATTACK_BLOCK_RULE,
      scope: 'ip',
      key: '192.0.2.9',
      exceeded: true,
    });
    for (const userId of ['a', 'b', 'c'])
      r.decided(
        limitEvent({ allowed: false, rules: [block], caller: { ip: '192.0.2.9', userId } }),
      );
    await r.flushViolations();
    expect(store.sightings).toEqual([]);
    expect(sum(store.violations)).toBe(3);
  });

  it('is not blinded by 100,000 one-identity IPs: the attacker after them is written', async () => {
    const store = new MemoryAuditStore();
    let now = 1_000_000;
    const r = recorder(store, true, () => now);
    const seen = (ip: string, userId: string) =>
      r.decided(limitEvent({ caller: { ip, userId }, at: now }));
    for (let i = 0; i < 100_000; i++)
      seen(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'u');
    now += 1000;
    for (let u = 0; u < 50; u++) seen('203.0.113.9', `victim-${u}`);
    await r.flushViolations();
    expect(store.sightings.filter((s) => s.ip === '203.0.113.9')).toHaveLength(50);
  });
});

describe('AttackBlocks', () => {
  const hash = new ApiKeyHasher(Buffer.alloc(32, 3)).hash('k');
  const index = new BlockIndex(
    [
      { scope: 'ip', key: '192.0.2.1', remainingMs: 2000 },
      { scope: 'user', key: 'mallory', remainingMs: 5000 },
      { scope: 'api_key', key: apiKeyPrefix(hash), remainingMs: 1000 },
    ],
    100,
  );

  it('blocks a caller by IP, user or API key hash prefix for the time the store said', () => {
    let now = 100;
    const blocks = new AttackBlocks(
      () => index,
      () => now,
    );
    expect(blocks.blockFor({ ip: '192.0.2.1' })).toEqual({
      scope: 'ip',
      key: '192.0.2.1',
      remainingMs: 2000,
    });
    expect(blocks.blockFor({ userId: 'mallory', ip: '192.0.2.2' })?.scope).toBe('user');
    expect(blocks.blockFor({ apiKeyHash: hash })).toEqual({
      scope: 'api_key',
      key: hash,
      remainingMs: 1000,
    });
    expect(blocks.blockFor({ ip: '192.0.2.2', userId: 'alice' })).toBeNull();
    now = 1600;
    expect(blocks.blockFor({ ip: '192.0.2.1' })?.remainingMs).toBe(500);
    expect(blocks.blockFor({ apiKeyHash: hash })).toBeNull();
    now = 2100;
    expect(blocks.blockFor({ ip: '192.0.2.1' })).toBeNull();
    expect(blocks.blockFor({ userId: 'mallory' })?.remainingMs).toBe(3000);
  });

  it('blocks nothing before the blocks are read', () => {
    expect(new AttackBlocks(() => undefined).blockFor({ ip: '192.0.2.1' })).toBeNull();
  });
});

describe('audit filters', () => {
  const since = new Date('2026-01-01T00:00:00Z');
  const until = new Date('2026-01-02T00:00:00Z');
  const ipKey: IpKeys = {
    ipv6PrefixBits: 64,
    keyOf: (t, field) => {
      if (t !== '192.0.2.1' && t !== '2001:db8::1') throw new ValidationError(field, 'bad');
      return t === '2001:db8::1' ? '2001:db8::/64' : t;
    },
  };
  const field = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return (err as ValidationError).field;
    }
    return undefined;
  };

  it('name the field of each bad value', () => {
    const ok = { since, until, limit: 100 };
    expect(field(() => validateViolationFilter({ ...ok, since: until }, ipKey))).toBe('since');
    expect(field(() => validateViolationFilter({ ...ok, until: new Date(NaN) }, ipKey))).toBe(
      'until',
    );
    expect(
      field(() =>
        validateViolationFilter({ ...ok, since: new Date('2024-01-01T00:00:00Z') }, ipKey),
      ),
    ).toBe('since');
    expect(field(() => validateViolationFilter({ ...ok, limit: 1001 }, ipKey))).toBe('limit');
    expect(field(() => validateViolationFilter({ ...ok, rule: 'a\0b' }, ipKey))).toBe('rule');
    expect(field(() => validateViolationFilter({ ...ok, userId: 'x'.repeat(257) }, ipKey))).toBe(
      'user_id',
    );
    expect(field(() => validateViolationFilter({ ...ok, ip: 'nope' }, ipKey))).toBe('ip');
    expect(field(() => validateStatsFilter({ since, until, name: '\ud800' }))).toBe('name');
    expect(validateViolationFilter({ ...ok, ip: '192.0.2.1' }, ipKey).ip).toBe('192.0.2.1');
    // An IPv6 network of the prefix CheckLimit keys by is its key; any other network is refused.
    expect(validateViolationFilter({ ...ok, ip: '2001:db8::1/64' }, ipKey).ip).toBe(
      '2001:db8::/64',
    );
    expect(field(() => validateViolationFilter({ ...ok, ip: '2001:db8::1/48' }, ipKey))).toBe('ip');
    expect(field(() => validateViolationFilter({ ...ok, ip: '192.0.2.1/64' }, ipKey))).toBe('ip');
  });
});
