/**
 * The no-op baseline: the service's server stack with decisions that do nothing. It is built from
 * the service's own parts as src/app/startApp.ts builds them (the same config from the same env,
 * logger, database pool and change feed, token authentication, metrics and the call log, host
 * load sampling, WatchLoad and ReportLoad, the grpc-js server with the service's
 * options, strict decoding, ConnectionGuard, health and reflection), but CheckLimit, CheckLimits,
 * CheckCommandQuota and RecordExecution answer a fixed answer (noopHandlers.ts) through the same
 * middleware chain, touching neither the domain nor the database. What it serves at 64 in flight
 * is the transport's limit on this machine; the service is compared with it.
 *
 * The rate-limit, command-quota, audit, task and dashboard capabilities are not wired: their
 * per-call work is what the baseline leaves out, and their background jobs (expiry, audit
 * flushes) have nothing to do with no decisions.
 *
 * Run as a child process by the bench (startServer.ts, `startServer(env, 'no-op')`), with the
 * environment `serve` reads; SIGTERM stops it.
 */
import { setMaxListeners } from 'node:events';
import type { Capability } from '../src/app/Capability.js';
import { followHealth } from '../src/app/followHealth.js';
import { Stops } from '../src/app/Stops.js';
import { wireAuth } from '../src/app/wireAuth.js';
import { wireDatabase } from '../src/app/wireDatabase.js';
import { wireLoad } from '../src/app/wireLoad.js';
import { loadConfig } from '../src/config.js';
import { GrpcServer } from '../src/grpc/GrpcServer.js';
import { logCalls } from '../src/grpc/logCalls.js';
import { loadServerCredentials } from '../src/grpc/serverCredentials.js';
import { JobRegistry } from '../src/jobs/JobRegistry.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics/Metrics.js';
import { PgLeaderLock } from '../src/store/PgLeaderLock.js';
import { noopHandlers } from './noopHandlers.js';

async function start(): Promise<() => Promise<void>> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const credentials = loadServerCredentials(config.tls);
  const stops = new Stops(logger);
  try {
    const database = stops.own(await wireDatabase(config, logger));
    const { db, feed } = database;
    const jobs = new JobRegistry(new PgLeaderLock(db), logger);
    stops.push(() => jobs.stop());
    const metrics = new Metrics();
    const shutdown = new AbortController();
    setMaxListeners(0, shutdown.signal);
    const base = {
      middleware: [logCalls(logger, metrics, config.logFailedCallsPerSecond)],
      shutdown: shutdown.signal,
    };
    const auth = stops.own(await wireAuth(config, logger, db, feed, base));
    const load = stops.own(await wireLoad(config, logger, db, feed, auth.deps));
    const noop = noopHandlers(auth.deps);
    const server = new GrpcServer({
      logger,
      limits: config.server,
      quota: { ...noop.quota, ...load.handlers.quota },
      admin: { ...noop.admin, ...auth.handlers.admin, ...load.handlers.admin },
      onShutdown: () => shutdown.abort(),
    });
    const parts: readonly Omit<Capability<unknown>, 'stop'>[] = [database, auth, load];
    const health = followHealth(
      server,
      parts.flatMap((p) => p.health),
      db,
    );
    for (const job of [...parts.flatMap((p) => p.jobs), health.job]) jobs.register(job);
    jobs.start();
    metrics.addGauges(parts.flatMap((p) => p.gauges ?? []));
    const port = await server.listen(config.host, config.port, credentials);
    health.update();
    logger.info({ host: config.host, port }, 'no-op baseline listening');
    return async () => {
      health.stopping();
      await server.shutdown(10_000);
      await stops.run();
      logger.flush();
    };
  } catch (err) {
    await stops.run();
    throw err;
  }
}

start().then(
  (stop) => {
    let stopping = false;
    process.on('SIGTERM', () => {
      if (stopping) return;
      stopping = true;
      stop().then(
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
