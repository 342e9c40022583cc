import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { silentLogger } from '../../src/log.js';
import { migrate } from '../../src/store/migrate.js';
import {
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from '../../src/store/startEmbeddedPostgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of a database that may CREATE DATABASE. */
    adminUrl: string;
    /** Name of the migrated template each test file copies. */
    templateDb: string;
  }
}

/**
 * One PostgreSQL for the run: the embedded server by default, or the server named by
 * QUOTA_TEST_DATABASE_URL. A migrated template database is made once; test files copy it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let embedded: EmbeddedDatabase | undefined;
  let dir: string | undefined;
  let adminUrl = process.env['QUOTA_TEST_DATABASE_URL'];
  if (!adminUrl) {
    dir = await mkdtemp(path.join(tmpdir(), 'quota-test-'));
    embedded = await startEmbeddedPostgres({ dataDir: dir, logger: silentLogger() });
    adminUrl = embedded.adminUrl;
  }
  const templateDb = `quota_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${templateDb}`);
  await admin.query(`CREATE DATABASE ${templateDb}`);
  const templateUrl = withDatabase(adminUrl, templateDb);
  await migrate(templateUrl, silentLogger());
  // Tests state their own rules; the seeded defaults would apply to every call.
  const t = new pg.Client({ connectionString: templateUrl });
  await t.connect();
  await t.query('DELETE FROM rate_limit_rules');
  await t.end();
  await admin.end();
  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', templateDb);
  return async () => {
    const a = new pg.Client({ connectionString: adminUrl });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${templateDb} WITH (FORCE)`).catch(() => undefined);
    await a.end();
    await embedded?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
