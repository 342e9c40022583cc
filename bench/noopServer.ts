/**
 * The no-op baseline: the service's own process (startApp: the same config from the same env,
 * logger, database pool, authentication, metrics and the call log, load sampling, WatchLoad,
 * the audit, tasks and background jobs, the grpc-js server with its options, strict decoding,
 * the connection guard, health and reflection) with CheckLimit, CheckLimits, CheckCommandQuota
 * and RecordExecution answering a fixed answer (noopHandlers.ts) through the same middleware,
 * touching neither the domain nor the database. What it serves at 64 in flight is the
 * transport's limit on this machine; the service is compared with it.
 *
 * Run as a child process by the bench (startServer.ts, `startServer(env, 'no-op')`), with the
 * environment `serve` reads; SIGTERM stops it.
 */
import { startApp } from '../src/app/startApp.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { noopHandlers } from './noopHandlers.js';

const config = loadConfig();
const logger = createLogger(config.logLevel);
startApp(config, logger, { quotaHandlers: noopHandlers }).then(
  (app) => {
    logger.info({ port: app.port }, 'no-op baseline listening');
    let stopping = false;
    process.on('SIGTERM', () => {
      if (stopping) return;
      stopping = true;
      app.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(err);
          process.exit(1);
        },
      );
    });
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
