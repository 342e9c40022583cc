import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { withDatabase } from './globalSetup.js';

/** A database of this test file's own, copied from the migrated template. */
export interface TestDatabase {
  readonly url: string;
  /** A plain client for assertions on stored state. */
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  drop(): Promise<void>;
}

/** A copy of the migrated template, or with `empty` a database with no schema at all. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const adminUrl = inject('adminUrl');
  const name = `quota_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(
      `CREATE DATABASE ${name} TEMPLATE ${options.empty ? 'template0' : inject('templateDb')}`,
    );
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // An idle connection the server ends (a test cutting sessions, the server at its connection
  // limit) would otherwise be an unhandled 'error' event in the test's process; queries made
  // afterwards still fail or reconnect as usual.
  pool.on('error', () => undefined);
  return {
    url,
    query: (text, values) => pool.query(text, values),
    async drop() {
      await pool.end();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}
