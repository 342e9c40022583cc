import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { silentLogger } from '../../src/log.js';
import { migrate } from '../../src/store/migrate.js';
import {
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from '../../src/store/startEmbeddedPostgres.js';
import { sqlSession } from './sqlSession.js';

/**
 * A migrated PostgreSQL of a test file's own, in a temporary folder: for the files that stop,
 * kill, freeze or restart it (on a shared one, that would stop every file).
 */
export class OwnPostgres {
  private constructor(
    /** Its folder (the cluster is in `pg/` below it). */
    readonly dir: string,
    private current: EmbeddedDatabase,
  ) {}

  /** Starts and migrates one in a new folder named after `prefix`. */
  static async start(prefix: string): Promise<OwnPostgres> {
    const dir = await mkdtemp(path.join(tmpdir(), `${prefix}-`));
    try {
      const db = await startEmbeddedPostgres({ dataDir: dir, logger: silentLogger() });
      await migrate(db.url, silentLogger());
      return new OwnPostgres(dir, db);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The running server (its pid, its stop()). */
  get db(): EmbeddedDatabase {
    return this.current;
  }

  get url(): string {
    return this.current.url;
  }

  /** Starts it again on the same folder and port, once it was stopped (or killed). */
  async restart(): Promise<void> {
    const port = Number(new URL(this.current.url).port);
    this.current = await startEmbeddedPostgres({
      dataDir: this.dir,
      port,
      logger: silentLogger(),
    });
  }

  /** Rows of `text`, on a session of its own. */
  async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    const client = await sqlSession(this.current.url);
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  /** Stops it and removes its folder. */
  async remove(): Promise<void> {
    await this.current.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
