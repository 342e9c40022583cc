import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DetectionSettings } from '../../src/audit/ports.js';
import { ATTACK_BLOCK_RULE } from '../../src/core/decisions.js';
import { silentLogger } from '../../src/log.js';
import { Database } from '../../src/store/Database.js';
import { PgAttackStore } from '../../src/store/PgAttackStore.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';
import { sqlSession } from '../support/sqlSession.js';

// Attack detection on the store, by the database clock: what it flags and when it blocks, with
// the evidence written at times set relative to the database's now (no waiting).

let db: TestDatabase;
let database: Database;
let attacks: PgAttackStore;

const SETTINGS: DetectionSettings = { windowS: 60, denials: 5, identities: 12, blockS: 2 };

beforeAll(async () => {
  db = await createTestDatabase();
  database = new Database({ url: db.url, timeoutMs: 5000, poolSize: 2, logger: silentLogger() });
  attacks = new PgAttackStore(database);
});

afterAll(async () => {
  await database?.close();
  await db?.drop();
});

beforeEach(async () => {
  await db.query('TRUNCATE violations, identity_sightings, attack_flags');
});

/** `count` denials of user `key` by `rule`, `ageS` seconds ago by the database clock. */
async function denials(key: string, count: number, ageS: number, rule = 'r'): Promise<void> {
  const at = `clock_timestamp() - make_interval(secs => ${ageS})`;
  await db.query(
    `INSERT INTO violations (first_at, last_at, count, source, rule, scope, key)
     VALUES (${at}, ${at}, $1, 'check_limit', $2, 'user', $3)`,
    [count, rule, key],
  );
}

/** `ip` seen with each of `identities`, `ageS` seconds ago. */
async function sightings(ip: string, identities: readonly string[], ageS: number): Promise<void> {
  await db.query(
    `INSERT INTO identity_sightings (ip, identity, last_seen)
     SELECT $1, i, clock_timestamp() - make_interval(secs => $3) FROM unnest($2::text[]) AS i
     ON CONFLICT (ip, identity) DO UPDATE SET last_seen = EXCLUDED.last_seen`,
    [ip, identities, ageS],
  );
}

const users = (n: number, tag = 'u') => Array.from({ length: n }, (_, i) => `user:${tag}${i}`);
const keys = (n: number) => Array.from({ length: n }, (_, i) => `api_key:k${i}`);

async function flag(key: string) {
  const result = await db.query<{
    kind: string;
    count: string;
    blocked: boolean;
    left_s: number | null;
  }>(
    `SELECT kind, count::text, blocked_until > clock_timestamp() AS blocked,
            extract(epoch FROM blocked_until - clock_timestamp())::float8 AS left_s
       FROM attack_flags WHERE key = $1`,
    [key],
  );
  return result.rows[0];
}

/** Ends the block of `key` now, as its time running out would. */
const endBlock = (key: string) =>
  db.query(
    `UPDATE attack_flags SET blocked_until = clock_timestamp() - interval '1 millisecond'
      WHERE key = $1`,
    [key],
  );

describe('identity spread', () => {
  it('counts users and API keys apart: ten users with a key each behind one NAT are not twenty', async () => {
    await sightings('198.51.100.1', [...users(10), ...keys(10)], 5);
    await sightings('198.51.100.2', users(12), 5);
    await sightings('198.51.100.3', keys(12), 5);
    const result = await attacks.detect({ ...SETTINGS, blockS: 0 });
    expect(result).toMatchObject({ flagged: 2, blocked: 0 });
    expect(await flag('198.51.100.1')).toBeUndefined();
    expect(await flag('198.51.100.2')).toMatchObject({ kind: 'identity_spread', count: '12' });
    expect(await flag('198.51.100.3')).toMatchObject({ kind: 'identity_spread', count: '12' });
  });

  it('blocks again when the spread goes on after the block ended, not on what came before', async () => {
    const ip = '198.51.100.9';
    await sightings(ip, users(12), 20);
    expect(await attacks.detect(SETTINGS)).toMatchObject({ flagged: 1, blocked: 1 });
    await endBlock(ip);
    // The sightings the block was set for are still in the window: not a new block.
    expect(await attacks.detect(SETTINGS)).toMatchObject({ flagged: 1, blocked: 0 });
    // A few identities again after it: not the pattern.
    await sightings(ip, users(3), 0);
    expect(await attacks.detect(SETTINGS)).toMatchObject({ flagged: 1, blocked: 0 });
    expect((await flag(ip))!.blocked).toBe(false);
    // Twelve users after it: blocked again, for QUOTA_BLOCK_S.
    await sightings(ip, users(12, 'w'), 0);
    expect(await attacks.detect(SETTINGS)).toMatchObject({ flagged: 1, blocked: 1 });
    const again = await flag(ip);
    expect(again).toMatchObject({ blocked: true });
    expect(again!.left_s).toBeGreaterThan(1);
    expect(again!.left_s).toBeLessThanOrEqual(2);
  });
});

describe('repeated denials', () => {
  it('blocks again when the denials go on after a block shorter than the window', async () => {
    await denials('hammer', 10, 30);
    expect(await attacks.detect(SETTINGS)).toMatchObject({ flagged: 1, blocked: 1 });
    const first = await flag('hammer');
    expect(first).toMatchObject({ kind: 'repeated_denials', count: '10', blocked: true });
    // In force: left as it is.
    expect(await attacks.detect(SETTINGS)).toMatchObject({ blocked: 0 });

    await endBlock('hammer');
    // The block's own denials are not the pattern; the ten before it are not evidence again.
    await denials('hammer', 50, 0, ATTACK_BLOCK_RULE);
    expect(await attacks.detect(SETTINGS)).toMatchObject({ flagged: 1, blocked: 0 });
    expect(await flag('hammer')).toMatchObject({ count: '10', blocked: false });

    await denials('hammer', 5, 0);
    expect(await attacks.detect(SETTINGS)).toMatchObject({ blocked: 0 });
    await denials('hammer', 1, 0);
    expect(await attacks.detect(SETTINGS)).toMatchObject({ flagged: 1, blocked: 1 });
    expect(await flag('hammer')).toMatchObject({ count: '16', blocked: true });
  });

  it('blocks a flag raised while blocking was off once blocking is on and the pattern is there', async () => {
    await denials('nail', 6, 10);
    expect(await attacks.detect({ ...SETTINGS, blockS: 0 })).toMatchObject({ blocked: 0 });
    expect(await flag('nail')).toMatchObject({ blocked: null });
    expect(await attacks.detect(SETTINGS)).toMatchObject({ blocked: 1 });
    expect(await flag('nail')).toMatchObject({ blocked: true });
  });
});

describe('a block lifted by an operator', () => {
  it('ends now and is set again only by evidence after the lift, as a block that ended', async () => {
    const long = { ...SETTINGS, blockS: 600 };
    await denials('hammer', 10, 30);
    expect(await attacks.detect(long)).toMatchObject({ blocked: 1 });
    const lifted = await attacks.lift('user', 'hammer');
    expect(lifted).toMatchObject([
      { kind: 'repeated_denials', scope: 'user', key: 'hammer', count: 10 },
    ]);
    const stored = await db.query<{ at: number; ok: boolean }>(
      `SELECT (extract(epoch FROM blocked_until) * 1000)::float8 AS at,
              blocked_until <= clock_timestamp() AS ok
         FROM attack_flags WHERE key = 'hammer'`,
    );
    expect(stored.rows[0]!.ok).toBe(true);
    expect(lifted[0]!.blockedUntil).toEqual(new Date(stored.rows[0]!.at));
    // No block in force now: nothing to lift.
    expect(await attacks.lift('user', 'hammer')).toEqual([]);

    // The ten denials it was set for are still in the window: not a block again.
    expect(await attacks.detect(long)).toMatchObject({ flagged: 1, blocked: 0 });
    await denials('hammer', 5, 0);
    expect(await attacks.detect(long)).toMatchObject({ blocked: 0 });
    expect(await flag('hammer')).toMatchObject({ count: '15', blocked: false });
    await denials('hammer', 1, 0);
    expect(await attacks.detect(long)).toMatchObject({ blocked: 1 });
    expect(await flag('hammer')).toMatchObject({ blocked: true });
  });

  it('ends the block of every kind on the key at one time, and no other key', async () => {
    const ip = '198.51.100.20';
    await sightings(ip, users(12), 5);
    await sightings('198.51.100.21', users(12), 5);
    await db.query(
      `INSERT INTO violations (first_at, last_at, count, source, rule, scope, key)
       VALUES (clock_timestamp(), clock_timestamp(), 10, 'check_limit', 'r', 'ip', $1)`,
      [ip],
    );
    expect(await attacks.detect({ ...SETTINGS, blockS: 600 })).toMatchObject({ blocked: 3 });
    const lifted = await attacks.lift('ip', ip);
    expect(lifted.map((f) => [f.kind, f.key])).toEqual([
      ['identity_spread', ip],
      ['repeated_denials', ip],
    ]);
    expect(lifted[0]!.blockedUntil).toEqual(lifted[1]!.blockedUntil);
    expect(await attacks.activeBlocks()).toMatchObject([{ scope: 'ip', key: '198.51.100.21' }]);
    expect(await attacks.detect({ ...SETTINGS, blockS: 600 })).toMatchObject({ blocked: 0 });
  });

  it('stays lifted when the lift commits while detection is deciding the flag', async () => {
    const ip = '198.51.100.30';
    await sightings(ip, users(12), 5);
    expect(await attacks.detect({ ...SETTINGS, blockS: 600 })).toMatchObject({ blocked: 1 });
    // The lift is not committed when detection reads the flags (the block is in force then) and
    // commits while detection waits to write the flag's row.
    const lifter = await sqlSession(db.url);
    try {
      await lifter.query('BEGIN');
      await lifter.query(
        `UPDATE attack_flags SET blocked_until = clock_timestamp()
          WHERE key = $1 AND blocked_until > clock_timestamp()`,
        [ip],
      );
      const detection = attacks.detect({ ...SETTINGS, blockS: 600 });
      await waitFor(async () => {
        const waiting = await db.query(
          `SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return waiting.rows.length > 0;
      });
      await lifter.query('COMMIT');
      expect(await detection).toMatchObject({ flagged: 1, blocked: 0 });
    } finally {
      await lifter.end();
    }
    expect(await flag(ip)).toMatchObject({ blocked: false });
    expect(await attacks.activeBlocks()).toEqual([]);
  });
});
