import { Authenticator } from '../auth/Authenticator.js';
import { bootstrapAdminToken, type AdminBootstrap } from '../auth/bootstrapAdminToken.js';
import { TokenAdmin } from '../auth/TokenAdmin.js';
import type { Config } from '../config.js';
import type { ChangeFeed } from '../core/ports.js';
import { authenticate } from '../grpc/authenticate.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import { tokenHandlers } from '../grpc/tokenHandlers.js';
import { tokenUsageFlushJob } from '../jobs/tokenUsageFlushJob.js';
import type { Logger } from '../log.js';
import type { Database } from '../store/Database.js';
import { PgTokenStore } from '../store/PgTokenStore.js';
import { wire } from './Capability.js';

/**
 * Authentication: every replica's copy of the tokens' grants (following the change feed), the
 * authentication step it adds to the middleware chain `base` (the returned `deps`, which every
 * other capability's handlers use), the token methods of AdminService, the first admin token,
 * and the batched last-use writes. QUOTA_AUTH=disabled leaves the chain as it is, with a warning
 * at every start. Health needs the grants loaded and, with authentication on, the first admin
 * token in place.
 *
 * A token made because the database held none is written once to `show` (stderr), never to the
 * log: the log goes to collectors and files that should never hold a secret.
 */
export function wireAuth(
  config: Config,
  logger: Logger,
  db: Database,
  feed: ChangeFeed,
  base: HandlerDeps,
  show: (text: string) => void = (text) => process.stderr.write(text),
) {
  return wire(logger, async (stops) => {
    const store = new PgTokenStore(db);
    const authenticator = new Authenticator(store, logger);
    await authenticator.start(feed);
    stops.push(() => authenticator.stop());
    // Revocations may have happened while the database was away.
    db.on('up', () => void authenticator.reload());

    const enabled = config.auth === 'enabled';
    let bootstrapped = !enabled;
    if (enabled) {
      let retry: NodeJS.Timeout | undefined;
      stops.push(() => clearTimeout(retry));
      const bootstrap = async (failures: number): Promise<void> => {
        try {
          report(await bootstrapAdminToken(store, config.adminToken), logger, show);
          bootstrapped = true;
          // The token just stored works on this replica at once.
          await authenticator.reload();
        } catch (err) {
          // An external database that is not migrated yet has no token table: health says
          // NOT_SERVING until it is, and this retries quietly after the first warning.
          if (failures === 0)
            logger.warn({ err }, 'admin token not set up yet; retrying every second');
          retry = setTimeout(() => void bootstrap(failures + 1), 1000);
          retry.unref();
        }
      };
      await bootstrap(0);
    } else {
      logger.warn(
        { QUOTA_AUTH: 'disabled' },
        'authentication is OFF: anyone who reaches the port may call every method, admin ones included',
      );
    }

    const deps: HandlerDeps = enabled
      ? { ...base, middleware: [...base.middleware, authenticate(authenticator)] }
      : base;
    const admin = new TokenAdmin(store, () => authenticator.reload());
    return {
      deps,
      handlers: tokenHandlers(admin, deps),
      health: [{ name: 'tokens', ready: () => authenticator.ready && bootstrapped }],
      jobs: [tokenUsageFlushJob(authenticator, logger)],
    };
  });
}

function report(result: AdminBootstrap, logger: Logger, show: (text: string) => void): void {
  switch (result.kind) {
    case 'configured':
      if (result.revoked)
        logger.warn('QUOTA_ADMIN_TOKEN has been revoked: calls with it are refused');
      else if (result.created) logger.info('QUOTA_ADMIN_TOKEN stored (as its hash)');
      return;
    case 'created':
      show(
        [
          '',
          'quota-authority: the database held no token, so this admin token was made. It is',
          'shown this once and stored only as a hash; keep it somewhere safe:',
          '',
          `    ${result.token}`,
          '',
          'Send it as "authorization: Bearer <token>". Make more with',
          '`quota-authority token create` or AdminService/CreateToken.',
          '',
          '',
        ].join('\n'),
      );
      logger.warn('no token existed: an admin token was made and shown once on stderr');
      return;
    case 'existing':
      return;
  }
}
