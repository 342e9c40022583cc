import { TokenAdmin } from '../auth/TokenAdmin.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { Database } from '../store/Database.js';
import { migrate, pendingMigrations } from '../store/migrate.js';
import { PgTokenStore } from '../store/PgTokenStore.js';
import { runningEmbeddedUrl, startEmbeddedPostgres } from '../store/startEmbeddedPostgres.js';

/**
 * Runs `work` with token administration straight on the database, for the CLI: an operator with
 * access to the database needs no token (the way back in when every admin token is lost). The
 * database is DATABASE_URL's; without it the embedded one in QUOTA_DATA_DIR, reached through
 * the server that runs it, or started (and migrated, as the server does) for the command. Every
 * running server applies a change within a second, through the change feed.
 */
export async function withTokenAdmin<T>(
  config: Config,
  logger: Logger,
  work: (admin: TokenAdmin) => Promise<T>,
): Promise<T> {
  let url = config.databaseUrl ?? (await runningEmbeddedUrl(config.dataDir));
  const embedded =
    url === undefined
      ? await startEmbeddedPostgres({ dataDir: config.dataDir, logger })
      : undefined;
  try {
    if (embedded) {
      url = embedded.url;
      await migrate(url, logger);
    }
    const db = new Database({ url: url!, timeoutMs: config.dbTimeoutMs, poolSize: 2, logger });
    try {
      const pending = await pendingMigrations(db);
      if (pending.length > 0)
        throw new Error(
          `the database is not migrated (${pending.join(', ')} pending): run \`quota-authority migrate\` first`,
        );
      return await work(new TokenAdmin(new PgTokenStore(db)));
    } finally {
      await db.close();
    }
  } finally {
    await embedded?.stop();
  }
}
