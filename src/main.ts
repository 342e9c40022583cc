#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import type { TokenInfo } from './auth/types.js';
import { isRole } from './auth/types.js';
import { ConfigError, describeVariables, loadConfig, type Config } from './config.js';
import { healthcheck, type HealthcheckOptions } from './healthcheck.js';
import { createLogger } from './log.js';
import { QUOTA_SERVICE } from './grpc/services.js';

// Each command imports what it runs when it runs: `healthcheck`, every few seconds in a
// container, then loads neither the server nor the database code (0.6 s instead of 1 s).

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
  const { serve: run } = await import('./app/serve.js');
  await run(config, logger);
}

async function runMigrations(opts: { down?: boolean; count?: string }): Promise<void> {
  const config = configOrExit();
  const logger = createLogger(config.logLevel);
  const direction = opts.down ? 'down' : 'up';
  const count = opts.count === undefined ? undefined : Number(opts.count);
  const { migrate } = await import('./store/migrate.js');
  const { startEmbeddedPostgres } = await import('./store/startEmbeddedPostgres.js');
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

function wholeMs(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError('must be a whole number of milliseconds, at least 1');
  return Number(value);
}

async function runHealthcheck(opts: HealthcheckOptions): Promise<void> {
  // One line of output: grpc-js sends an IP address as the TLS server name, which Node
  // answers with a deprecation notice (DEP0123) of two lines, on every probe.
  process.noDeprecation = true;
  const { exitCode, line } = await healthcheck(opts);
  (exitCode === 0 ? process.stdout : process.stderr).write(
    `${exitCode === 0 ? '' : 'healthcheck: '}${line}\n`,
  );
  // At once: the container runtime waits for the exit, and nothing is left to finish.
  process.exit(exitCode);
}

/**
 * The token commands' logger: warnings and worse, on stderr, so that stdout holds only what the
 * command prints (a made token can go straight into a secret store with `> file`).
 */
function commandLogger(config: Config) {
  const level = config.logLevel === 'info' ? 'warn' : config.logLevel;
  return pino({ level, base: { service: 'quota-authority' } }, pino.destination(2));
}

async function createToken(name: string, opts: { role: string }): Promise<void> {
  const config = configOrExit();
  const { withTokenAdmin } = await import('./app/withTokenAdmin.js');
  const role = opts.role;
  if (!isRole(role)) throw new Error(`--role must be client, viewer or admin`);
  const { token, info } = await withTokenAdmin(config, commandLogger(config), (admin) =>
    admin.create(name, role),
  );
  process.stderr.write(
    `token ${info.id} ${JSON.stringify(info.name)} (${info.role}) made; it is shown this once, below, and stored only as a hash:\n`,
  );
  process.stdout.write(`${token}\n`);
}

async function listTokens(): Promise<void> {
  const config = configOrExit();
  const { withTokenAdmin } = await import('./app/withTokenAdmin.js');
  const tokens = await withTokenAdmin(config, commandLogger(config), (admin) => admin.list());
  process.stdout.write(tokenTable(tokens));
}

async function revokeToken(id: string): Promise<void> {
  const config = configOrExit();
  const { withTokenAdmin } = await import('./app/withTokenAdmin.js');
  const info = await withTokenAdmin(config, commandLogger(config), (admin) =>
    admin.revoke(/^\d+$/.test(id) ? Number(id) : NaN),
  );
  process.stdout.write(
    `token ${info.id} ${JSON.stringify(info.name)} revoked at ${info.revokedAt!.toISOString()}\n`,
  );
}

function tokenTable(tokens: readonly TokenInfo[]): string {
  const when = (d: Date | null) => (d ? d.toISOString() : '-');
  const rows = [
    ['id', 'name', 'role', 'created', 'last used', 'revoked'],
    ...tokens.map((t) => [
      String(t.id),
      JSON.stringify(t.name),
      t.role,
      when(t.createdAt),
      when(t.lastUsedAt),
      when(t.revokedAt),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => `${r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}`.trimEnd() + '\n')
    .join('');
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

program
  .command('healthcheck')
  .description(
    'ask grpc.health.v1.Health/Check once; exit 0 only when SERVING, else 1 with one line on stderr (what the container HEALTHCHECK runs)',
  )
  .option(
    '--address <host:port>',
    'server to ask (default: 127.0.0.1, or QUOTA_HOST unless a wildcard, and QUOTA_PORT)',
  )
  .option(
    '--service <name>',
    'service whose health is asked; "" for the whole server',
    QUOTA_SERVICE,
  )
  .option('--timeout-ms <ms>', 'deadline of the call, connection included', wholeMs, 2000)
  .option(
    '--ca <file>',
    'PEM CA the server certificate must chain to (default with QUOTA_TLS_CERT: that file)',
  )
  .option(
    '--server-name <name>',
    "name the server certificate must be valid for (default: QUOTA_TLS_CERT's first DNS name)",
  )
  .option('--cert <file>', 'PEM client certificate, under mutual TLS (QUOTA_TLS_CLIENT_CA)')
  .option('--key <file>', 'PEM private key of --cert')
  .option('--insecure', 'TLS without verifying the server certificate')
  .option('--plaintext', 'no TLS, even with QUOTA_TLS_CERT set')
  .action(runHealthcheck);

const token = program
  .command('token')
  .description(
    'manage bearer tokens, straight in the database (DATABASE_URL, or the embedded one in QUOTA_DATA_DIR, also while a server runs on it)',
  );
token
  .command('create')
  .description('make a token and print it on stdout, the only time it is shown')
  .argument('<name>', 'what the token is for (1 to 256 bytes)')
  .addOption(
    new Option('--role <role>', 'what it may call')
      .choices(['client', 'viewer', 'admin'])
      .makeOptionMandatory(),
  )
  .action(createToken);
token.command('list').description('list tokens (never the tokens themselves)').action(listTokens);
token
  .command('revoke')
  .description('revoke a token: every server refuses it within a second')
  .argument('<id>', 'the token id, from `token list`')
  .action(revokeToken);

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`quota-authority: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
