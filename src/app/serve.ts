import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { startApp, type StartOptions } from './startApp.js';

/**
 * Runs the server as `serve` does until a signal: SIGTERM, SIGINT or SIGHUP drain it and end
 * the process (1 when the drain failed). A start that fails is logged as fatal and leaves exit
 * code 1.
 */
export async function serve(config: Config, logger: Logger, options?: StartOptions): Promise<void> {
  const app = await startApp(config, logger, options).catch((err: unknown) => {
    logger.fatal({ err }, 'start failed');
    logger.flush();
    process.exitCode = 1;
    return undefined;
  });
  if (!app) return;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'signal received');
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A closed terminal: the same drain (by default Node would die at once and, no 'exit' event
  // being emitted, leave an embedded database running).
  process.on('SIGHUP', () => stop('SIGHUP'));
}
