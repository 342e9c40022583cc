import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { runner } from 'node-pg-migrate';
import type { Logger } from '../log.js';
import { projectRoot } from '../projectRoot.js';
import type { Database } from './Database.js';

/** The migrations folder. */
export function migrationsDir(): string {
  return path.join(projectRoot(), 'migrations');
}

/** Applies (up) or reverts (down, `count` steps) the migrations; returns the names run. */
export async function migrate(
  url: string,
  logger: Logger,
  direction: 'up' | 'down' = 'up',
  count?: number,
): Promise<string[]> {
  const ran = await runner({
    databaseUrl: url,
    dir: migrationsDir(),
    migrationsTable: 'pgmigrations',
    direction,
    count: count ?? (direction === 'up' ? Infinity : 1),
    singleTransaction: true,
    logger: {
      debug: (msg: string) => logger.debug(msg),
      info: (msg: string) => logger.debug(msg),
      warn: (msg: string) => logger.warn(msg),
      error: (msg: string) => logger.error(msg),
    },
  });
  return ran.map((m) => m.name);
}

/** Names of the migrations in the folder that the database has not applied. */
export async function pendingMigrations(db: Database): Promise<string[]> {
  const files = (await readdir(migrationsDir()))
    .filter((f) => /\.(sql|js|ts)$/.test(f))
    .map((f) => f.replace(/\.(sql|js|ts)$/, ''))
    .sort();
  const exists = await db.query<{ t: string | null }>(
    `SELECT to_regclass('pgmigrations')::text AS t`,
  );
  if (!exists.rows[0]?.t) return files;
  const applied = await db.query<{ name: string }>('SELECT name FROM pgmigrations');
  const done = new Set(applied.rows.map((r) => r.name));
  return files.filter((f) => !done.has(f));
}
