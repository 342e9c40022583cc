import { describe, expect, it } from 'vitest';
import { apiKeyPrefix } from '../../src/audit/apiKeyPrefix.js';
import {
  IdentityTracker,
  type IdentityTrackerOptions,
  type SightingBatch,
} from '../../src/audit/IdentityTracker.js';
import { StatsCounter } from '../../src/audit/StatsCounter.js';
import { ViolationBuffer } from '../../src/audit/ViolationBuffer.js';
import { ApiKeyHasher } from '../../src/limits/ApiKeyHasher.js';
import { commandEvent, denial, limitEvent, outcome } from '../support/auditEvents.js';

const total = (rows: readonly { count: number }[]) => rows.reduce((n, r) => n + r.count, 0);
const record = (b: ViolationBuffer, rule: string, userId: string, at = 1000) =>
  b.record(
    'check_limit',
    outcome({ rule, key: userId, exceeded: true }),
    { userId },
    undefined,
    at,
  );

describe('apiKeyPrefix', () => {
  it('keeps 12 characters of the digest, which tell keys apart, not the scheme', () => {
    const hasher = new ApiKeyHasher(Buffer.alloc(32, 1));
    const a = apiKeyPrefix(hasher.hash('key-a'));
    const b = apiKeyPrefix(hasher.hash('key-b'));
    expect(a).toHaveLength(12);
    expect(a).not.toBe(b);
    expect(hasher.hash('key-a').endsWith(a)).toBe(false);
    expect(hasher.hash('key-a')).toContain(`:${a}`);
  });
});

describe('ViolationBuffer', () => {
  it('aggregates identical denials into one row with count, first and last time', () => {
    const b = new ViolationBuffer(100);
    record(b, 'r', 'alice', 3000);
    record(b, 'r', 'alice', 1000);
    record(b, 'r', 'alice', 2000);
    record(b, 'r', 'bob', 1500);
    expect(b.aggregated).toBe(2);
    const rows = b.take();
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.userId === 'alice')).toMatchObject({
      count: 3,
      firstAtMs: 1000,
      lastAtMs: 3000,
      key: 'alice',
    });
    expect(b.size).toBe(0);
  });

  it('past its capacity folds denials into one row per source, rule and scope: the count is kept', () => {
    const b = new ViolationBuffer(10);
    for (let i = 0; i < 1000; i++) record(b, i % 2 ? 'odd' : 'even', `u${i}`);
    const rows = b.take();
    expect(total(rows)).toBe(1000);
    expect(rows).toHaveLength(12);
    const folded = rows.filter((r) => r.key === '');
    expect(folded.map((r) => [r.rule, r.count, r.userId]).sort()).toEqual([
      ['even', 495, null],
      ['odd', 495, null],
    ]);
    expect(b.folded).toBe(990);
    expect(b.dropped).toBe(0);
  });

  it('never lets a row span an hour: identical denials either side of one are two rows', () => {
    const b = new ViolationBuffer(100);
    const hour = 3_600_000;
    record(b, 'r', 'alice', hour - 500);
    record(b, 'r', 'alice', hour - 100);
    record(b, 'r', 'alice', hour + 100);
    // Folded rows too: past the capacity, each hour has its own.
    const small = new ViolationBuffer(1);
    record(small, 'r', 'x', hour - 1);
    for (const at of [hour - 2, hour + 1, hour + 2]) record(small, 'r', 'y', at);
    const rows = b.take();
    expect(rows.map((r) => [r.firstAtMs, r.lastAtMs, r.count]).sort()).toEqual([
      [hour - 500, hour - 100, 2],
      [hour + 100, hour + 100, 1],
    ]);
    const folded = small.take().filter((r) => r.key === '');
    expect(folded.map((r) => [r.firstAtMs, r.lastAtMs, r.count]).sort()).toEqual(
      [
        [hour + 1, hour + 2, 2],
        [hour - 2, hour - 2, 1],
      ].sort(),
    );
    for (const r of [...rows, ...folded])
      expect(Math.floor(r.firstAtMs / hour)).toBe(Math.floor(r.lastAtMs / hour));
  });

  it('counts rows held elsewhere (taken, not written yet) against its capacity', () => {
    let held = 8;
    const b = new ViolationBuffer(10, () => held);
    for (let i = 0; i < 5; i++) record(b, 'r', `u${i}`);
    expect(
      b
        .take()
        .filter((r) => r.key !== '')
        .map((r) => r.userId),
    ).toEqual(['u0', 'u1']);
    expect(b.folded).toBe(3);
    held = 0;
    for (let i = 0; i < 5; i++) record(b, 'r', `u${i}`);
    expect(b.take()).toHaveLength(5);
  });

  it('keeps a path without its query string or fragment', () => {
    const b = new ViolationBuffer(10);
    for (const path of ['/v1/x?api_key=SECRET', '/v1/x#token=SECRET', '/v1/x?a=1#b', '/v1/x'])
      b.record('check_limit', outcome({ exceeded: true }), { path }, undefined, 1000);
    const rows = b.take();
    expect(rows).toEqual([expect.objectContaining({ path: '/v1/x', count: 4 })]);
    expect(JSON.stringify(rows)).not.toContain('SECRET');
  });

  it('keeps only a prefix of an API key hash, in the key and the caller fields', () => {
    const hash = new ApiKeyHasher(Buffer.alloc(32, 1)).hash('secret-key');
    const b = new ViolationBuffer(10);
    b.record(
      'check_limit',
      outcome({ scope: 'api_key', key: hash, exceeded: true }),
      { apiKeyHash: hash, ip: '192.0.2.1' },
      undefined,
      1,
    );
    const [row] = b.take();
    expect(row).toMatchObject({ key: apiKeyPrefix(hash), apiKeyPrefix: apiKeyPrefix(hash) });
    expect(JSON.stringify(row)).not.toContain(hash);
  });
});

describe('StatsCounter', () => {
  it('counts allowed, denied and shadow-denied per rule and under *, and replays not at all', () => {
    const s = new StatsCounter();
    for (let i = 0; i < 3; i++)
      s.count(
        limitEvent({ rules: [outcome({ rule: 'a' }), outcome({ rule: 'sh', shadow: true })] }),
      );
    s.count(
      limitEvent({
        rules: [outcome({ rule: 'a' }), outcome({ rule: 'sh', shadow: true, exceeded: true })],
      }),
    );
    s.count(
      limitEvent({
        allowed: false,
        rules: [outcome({ rule: 'a', exceeded: true }), outcome({ rule: 'sh', shadow: true })],
      }),
    );
    s.count(denial('a', { replayed: true }));
    s.count(limitEvent({ degraded: true, rules: [outcome({ rule: 'a' })] }));
    const rows = s.take();
    const by = (name: string) => rows.find((r) => r.kind === 'rule' && r.name === name);
    expect(by('*')).toMatchObject({ allowed: 4, denied: 1, shadowDenied: 1, degraded: 1 });
    expect(by('a')).toMatchObject({ allowed: 4, denied: 1, shadowDenied: 0, degraded: 1 });
    expect(by('sh')).toMatchObject({ allowed: 4, denied: 0, shadowDenied: 1, degraded: 0 });
    expect(rows.every((r) => r.hourMs === 3_600_000)).toBe(true);
  });

  it('counts command quotas per command type and under *, per hour', () => {
    const s = new StatsCounter();
    s.count(commandEvent());
    s.count(commandEvent({ allowed: false, at: 2 * 3_600_000 + 5 }));
    s.count(commandEvent({ caller: { userId: 'bob', commandType: 'code' } }));
    const rows = s.take().filter((r) => r.kind === 'command');
    expect(rows.map((r) => [r.hourMs, r.name, r.allowed, r.denied]).sort()).toEqual(
      [
        [3_600_000, '*', 2, 0],
        [3_600_000, 'shell', 1, 0],
        [3_600_000, 'code', 1, 0],
        [7_200_000, '*', 0, 1],
        [7_200_000, 'shell', 0, 1],
      ].sort(),
    );
  });

  it('bounds the names of one hour: past the bound, further names count under (other)', () => {
    const s = new StatsCounter(5);
    for (let i = 0; i < 1000; i++)
      s.count(commandEvent({ caller: { userId: 'x', commandType: `t${i}` } }));
    const rows = s.take();
    expect(rows.length).toBeLessThanOrEqual(6);
    expect(rows.find((r) => r.name === '(other)')!.allowed).toBe(996);
    expect(rows.find((r) => r.name === '*')!.allowed).toBe(1000);
  });

  it('counts a decision in the hour of the time it is given (the store clock)', () => {
    const s = new StatsCounter();
    s.count(denial('r', { at: 3_600_000 - 1 }), 3_600_000 + 5);
    expect(s.take().map((r) => r.hourMs)).toEqual([3_600_000, 3_600_000]);
  });
});

describe('IdentityTracker', () => {
  const tracker = (o: Partial<IdentityTrackerOptions> = {}) =>
    new IdentityTracker({ windowMs: 60_000, perIp: 3, total: 12, ...o });
  const ids = (batch: SightingBatch) => batch.rows.map((r) => `${r.ip} ${r.identity}`).sort();
  const hash = (k: string) => new ApiKeyHasher(Buffer.alloc(32, 1)).hash(k);

  it('writes nothing for an IP with one identity, all of an IP once it has a second, then what changed', () => {
    const t = tracker();
    t.seen('192.0.2.1', 'alice', undefined, 1000);
    t.seen('192.0.2.1', 'alice', undefined, 2000);
    expect(t.pending(3000).rows).toEqual([]);
    t.seen('192.0.2.1', 'bob', undefined, 4000);
    const batch = t.pending(5000);
    expect([...batch.rows].sort((a, b) => a.lastSeenMs - b.lastSeenMs)).toEqual([
      { ip: '192.0.2.1', identity: 'user:alice', lastSeenMs: 2000 },
      { ip: '192.0.2.1', identity: 'user:bob', lastSeenMs: 4000 },
    ]);
    t.written(batch);
    expect(t.pending(6000).rows).toEqual([]);
    t.seen('192.0.2.1', 'alice', undefined, 7000);
    expect(t.pending(8000).rows).toEqual([
      { ip: '192.0.2.1', identity: 'user:alice', lastSeenMs: 7000 },
    ]);
  });

  it('writes a batch again until it is marked written, and a sighting seen since then again', () => {
    const t = tracker();
    t.seen('192.0.2.1', 'alice', undefined, 1000);
    t.seen('192.0.2.1', 'bob', undefined, 1000);
    const first = t.pending(2000);
    expect(first.rows).toHaveLength(2);
    expect(t.pending(3000).rows).toHaveLength(2);
    t.seen('192.0.2.1', 'bob', undefined, 3500);
    t.written(first);
    expect(t.pending(4000).rows).toEqual([
      { ip: '192.0.2.1', identity: 'user:bob', lastSeenMs: 3500 },
    ]);
  });

  it('counts users and API keys apart: one user with one key is one identity of each', () => {
    const t = tracker();
    t.seen('192.0.2.1', 'alice', hash('k'), 1000);
    t.seen('192.0.2.1', 'alice', hash('k'), 2000);
    expect(t.pending(3000).rows).toEqual([]);
    expect(t.singleIps).toBe(1);
    t.seen('192.0.2.1', 'alice', hash('k2'), 4000);
    expect(ids(t.pending(5000))).toEqual(
      [
        `192.0.2.1 api_key:${apiKeyPrefix(hash('k'))}`,
        `192.0.2.1 api_key:${apiKeyPrefix(hash('k2'))}`,
        '192.0.2.1 user:alice',
      ].sort(),
    );
    expect(t.size).toBe(3);
  });

  it('forgets what left the window: an identity past it is not a second one', () => {
    const t = tracker();
    t.seen('192.0.2.1', 'alice', undefined, 1000);
    t.seen('192.0.2.1', 'bob', undefined, 1000 + 60_001);
    expect(t.pending(1000 + 60_002).rows).toEqual([]);
    t.seen('192.0.2.2', 'a', undefined, 1000);
    t.seen('192.0.2.2', 'b', undefined, 1000);
    expect(t.size).toBe(2);
    expect(t.pending(1000 + 60_001).rows).toEqual([]);
    expect([t.size, t.singleIps]).toEqual([0, 1]);
  });

  it('keeps the most recent identities when full: per IP and kind, over all IPs, and single IPs', () => {
    const t = tracker({ singles: 3 });
    for (let i = 0; i < 10; i++) t.seen('192.0.2.1', `u${i}`, undefined, 1000 + i);
    expect(ids(t.pending(2000))).toEqual([
      '192.0.2.1 user:u7',
      '192.0.2.1 user:u8',
      '192.0.2.1 user:u9',
    ]);
    expect(t.evicted).toBe(7);
    // Four more IPs of three users each: the least recently seen IP (.1) makes room.
    for (let ip = 2; ip <= 5; ip++)
      for (const u of ['a', 'b', 'c']) t.seen(`192.0.2.${ip}`, u, undefined, 3000 + ip);
    expect(t.size).toBe(12);
    expect(ids(t.pending(4000)).some((r) => r.startsWith('192.0.2.1 '))).toBe(false);
    // Single IPs: the oldest makes room for the newest.
    for (let ip = 10; ip < 14; ip++) t.seen(`198.51.100.${ip}`, 'x', undefined, 5000 + ip);
    expect(t.singleIps).toBe(3);
    t.seen('198.51.100.10', 'y', undefined, 6000);
    t.seen('198.51.100.13', 'y', undefined, 6000);
    expect(ids(t.pending(7000)).filter((r) => r.startsWith('198.51.100.'))).toEqual([
      '198.51.100.13 user:x',
      '198.51.100.13 user:y',
    ]);
  });

  it('is not blinded by a flood of one-identity IPs: the attacker after them is seen', () => {
    const t = new IdentityTracker({ windowMs: 60_000, perIp: 100 });
    const now = 1_000_000;
    for (let i = 0; i < 100_000; i++)
      t.seen(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'u', undefined, now);
    for (let u = 0; u < 50; u++) t.seen('203.0.113.9', `victim-${u}`, undefined, now + 1000);
    const batch = t.pending(now + 2000);
    expect(batch.rows.filter((r) => r.ip === '203.0.113.9')).toHaveLength(50);
    expect(batch.rows).toHaveLength(50);
  });

  it('gives from pending what changed since the last write, however many IPs it tracks', () => {
    const t = new IdentityTracker({ windowMs: 60_000, perIp: 100 });
    const now = 1e9;
    for (let i = 0; i < 50_000; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      t.seen(ip, 'a', undefined, now);
      t.seen(ip, 'b', undefined, now);
    }
    const first = t.pending(now + 1);
    expect(first.rows).toHaveLength(100_000);
    t.written(first);
    expect(t.pending(now + 2).rows).toEqual([]);
    t.seen('10.0.0.7', 'a', undefined, now + 3);
    expect(t.pending(now + 4).rows).toEqual([
      { ip: '10.0.0.7', identity: 'user:a', lastSeenMs: now + 3 },
    ]);
  });
});
