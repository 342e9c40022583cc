import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { StoreNotMigratedError, StoreUnavailableError } from '../../src/errors.js';
import { Database } from '../../src/store/Database.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';
import { sqlSession } from '../support/sqlSession.js';

let db: TestDatabase;
let database: Database;

beforeAll(async () => {
  db = await createTestDatabase();
  database = new Database({
    url: db.url,
    timeoutMs: 250,
    slowTimeoutMs: 3000,
    poolSize: 4,
    logger: silentLogger(),
  });
});

afterAll(async () => {
  await database?.close();
  await db?.drop();
});

describe('Database', () => {
  it('fails a transaction whose connection the server cuts, without an unhandled error', async () => {
    const killer = await sqlSession(db.url);
    try {
      const work = database.transaction(async (client) => {
        await client.query(`SELECT set_config('application_name', 'victim', true)`);
        await client.query('SELECT pg_sleep(2)');
      });
      const outcome = work.then(
        () => undefined,
        (err: unknown) => err,
      );
      await new Promise((r) => setTimeout(r, 200));
      const killed = await killer.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'`,
      );
      expect(killed.rowCount).toBe(1);
      expect(await outcome).toBeInstanceOf(Error);
      // The pool is usable afterwards: the cut connection was discarded, not handed out again.
      // The cut took the breaker down; its probe (a fresh connection) brings it back up.
      await waitFor(() => database.available, 5000);
      const ok = await database.query<{ one: number }>('SELECT 1 AS one');
      expect(ok.rows[0]!.one).toBe(1);
    } finally {
      await killer.end();
    }
  });

  it('bounds statements inside a transaction on the server too', async () => {
    const started = performance.now();
    await expect(
      database.transaction((client) => client.query('SELECT pg_sleep(10)')),
    ).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(4000);
  });

  it('stays up when the server answers with an error of its own, a lock timeout included', async () => {
    // The test before may have taken the breaker down (a statement past the bound).
    await waitFor(() => database.available, 5000);
    const holder = await sqlSession(db.url);
    try {
      await holder.query('CREATE TABLE IF NOT EXISTS lock_probe (id int PRIMARY KEY)');
      await holder.query('INSERT INTO lock_probe VALUES (1) ON CONFLICT DO NOTHING');
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM lock_probe WHERE id = 1 FOR UPDATE');
      const err = await database
        .transaction(async (client) => {
          await client.query(`SET LOCAL lock_timeout = '50ms'`);
          await client.query('SELECT * FROM lock_probe WHERE id = 1 FOR UPDATE');
        })
        .catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('55P03');
      expect(database.available).toBe(true);
      await expect(database.query('SELECT nonsense_column FROM lock_probe')).rejects.toThrow();
      expect(database.available).toBe(true);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  });

  it('gives up a report past its bound without marking the database down, and the server cancels it', async () => {
    const reports = new Database({
      url: db.url,
      timeoutMs: 250,
      poolSize: 2,
      logger: silentLogger(),
      reportTimeoutMs: 300,
    });
    try {
      // Nothing else runs on this instance: a timed-out query would be the only "answer" it saw.
      const started = performance.now();
      const slow = await reports.report(`SELECT pg_sleep(5), 'report-probe' AS tag`).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(slow).toBeInstanceOf(StoreUnavailableError);
      expect(performance.now() - started).toBeLessThan(3000);
      expect(reports.available).toBe(true);
      expect((await reports.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
      // statement_timeout on the report's connection: the server does not keep sleeping.
      await waitFor(async () => {
        const active = await db.query<{ n: string }>(
          `SELECT count(*)::text AS n FROM pg_stat_activity
            WHERE query LIKE '%report-probe%' AND state = 'active' AND pid <> pg_backend_pid()`,
        );
        return active.rows[0]!.n === '0';
      }, 3000);
    } finally {
      await reports.close();
    }
  });

  it('fails a call the server has no session for (its connection limit), and stays up', async () => {
    // A role of this test's own with room for two sessions: the limit a busy cluster's
    // max_connections sets for everyone, without filling the cluster other files share.
    const role = `quota_limited_${randomBytes(4).toString('hex')}`;
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'limited' CONNECTION LIMIT 2`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'limited';
    const limited = new Database({
      url: url.toString(),
      timeoutMs: 1000,
      poolSize: 3,
      logger: silentLogger(),
    });
    let seat: pg.Client | undefined;
    try {
      // One pooled session, and a seat taken by someone else: the role is at its limit.
      await limited.query('SELECT 1');
      seat = await sqlSession(url.toString());
      const [pooled, extra] = await Promise.all(
        [1, 2].map((n) =>
          limited.query(`SELECT pg_sleep(0.3), ${n} AS n`).catch((e: unknown) => e),
        ),
      );
      expect(pooled).toMatchObject({ rowCount: 1 });
      // The failure mode's error for that call, not INTERNAL; the open session still works,
      // so the database is not taken for down.
      expect(extra).toBeInstanceOf(StoreUnavailableError);
      expect((extra as Error).message).toMatch(/too many connections/);
      expect(limited.available).toBe(true);
      expect((await limited.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);

      // Warming more connections than the role may have fails the start, and what did open
      // goes back: closing does not wait for ever on a connection kept out of the pool.
      await seat.end();
      await limited.close();
      const warmed = new Database({
        url: url.toString(),
        timeoutMs: 1000,
        poolSize: 3,
        logger: silentLogger(),
      });
      try {
        await expect(warmed.warm()).rejects.toThrow(/too many connections/);
        const closed = await Promise.race([
          warmed.close().then(() => true),
          new Promise((r) => setTimeout(() => r(false), 3000)),
        ]);
        expect(closed).toBe(true);
      } finally {
        await warmed.close().catch(() => undefined);
      }
    } finally {
      await seat?.end().catch(() => undefined);
      await limited.close().catch(() => undefined);
      await db.query(`DROP ROLE ${role}`).catch(() => undefined);
    }
  });

  it('takes a missing table for a database not migrated only while migrations are pending', async () => {
    let pending = true;
    const schema = new Database({
      url: db.url,
      timeoutMs: 1000,
      poolSize: 1,
      logger: silentLogger(),
      migrationsPending: () => pending,
    });
    try {
      const before = await schema.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
      expect(before).toBeInstanceOf(StoreNotMigratedError);
      // Migrated: the same answer is this version's own fault, passed on as it is (INTERNAL).
      pending = false;
      const after = await schema.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
      expect(after).toBeInstanceOf(pg.DatabaseError);
      expect((after as pg.DatabaseError).code).toBe('42P01');
      expect(schema.available).toBe(true);
    } finally {
      await schema.close();
    }
  });
});
