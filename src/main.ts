#!/usr/bin/env node
import { Command } from 'commander';
import { startApp } from './app/startApp.js';
import { ConfigError, describeVariables, loadConfig, type Config } from './config.js';
import { createLogger } from './log.js';
import { migrate } from './store/migrate.js';
import { startEmbeddedPostgres } from './store/startEmbeddedPostgres.js';

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `quota-authority: ${err.message}\nRun with --help for every variable and its default.\n`,
      );
      process.exit(2);
    }
    throw err;
  }
}

async function serve(): Promise<void> {
  const config = configOrExit();
  const logger = createLogger(config.logLevel);
  const app = await startApp(config, logger).catch((err: unknown) => {
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

async function runMigrations(opts: { down?: boolean; count?: string }): Promise<void> {
  const config = configOrExit();
  const logger = createLogger(config.logLevel);
  const direction = opts.down ? 'down' : 'up';
  const count = opts.count === undefined ? undefined : Number(opts.count);
  let url = config.databaseUrl;
  // Without DATABASE_URL the embedded database in QUOTA_DATA_DIR is the one migrated.
  const embedded =
    url === undefined
      ? await startEmbeddedPostgres({ dataDir: config.dataDir, logger })
      : undefined;
  url ??= embedded!.url;
  try {
    const ran = await migrate(url, logger, direction, count);
    process.stdout.write(
      ran.length === 0 ? 'no migrations to run\n' : `${direction}: ${ran.join(', ')}\n`,
    );
  } finally {
    await embedded?.stop();
  }
}

const program = new Command('quota-authority')
  .description('Central quota authority: rate limits, command quotas and host load over gRPC.')
  .addHelpText('after', `\nEnvironment variables:\n${describeVariables()}\n`);

program.command('serve', { isDefault: true }).description('run the gRPC server').action(serve);
program
  .command('migrate')
  .description('apply the database migrations (DATABASE_URL, or the embedded database)')
  .option('--down', 'revert instead of apply')
  .option('--count <n>', 'how many migrations (default: all up, one down)')
  .action(runMigrations);

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`quota-authority: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
