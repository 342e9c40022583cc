import { setMaxListeners } from 'node:events';
import type { Config } from '../config.js';
import { GrpcServer, type GrpcServerOptions } from '../grpc/GrpcServer.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import { logCalls } from '../grpc/logCalls.js';
import { loadServerCredentials, tlsMode } from '../grpc/serverCredentials.js';
import { JobRegistry } from '../jobs/JobRegistry.js';
import type { Logger } from '../log.js';
import { Metrics } from '../metrics/Metrics.js';
import { PgLeaderLock } from '../store/PgLeaderLock.js';
import { PgTaskRunLog } from '../store/PgTaskRunLog.js';
import type { App } from './App.js';
import { followHealth } from './followHealth.js';
import { Stops } from './Stops.js';
import { fanOut } from '../core/decisions.js';
import type { Capability } from './Capability.js';
import type { DecisionHooks } from './DecisionHooks.js';
import { wireAudit } from './wireAudit.js';
import { wireAuth } from './wireAuth.js';
import { wireDashboard } from './wireDashboard.js';
import { wireDatabase } from './wireDatabase.js';
import { wireLimits } from './wireLimits.js';
import { wireLoad } from './wireLoad.js';
import { wireQuotas } from './wireQuotas.js';
import { wireTasks } from './wireTasks.js';

/** What startApp may be given besides the configuration. */
export interface StartOptions {
  /**
   * QuotaService methods served instead of the capabilities' own, through the same adapters and
   * middleware (`deps`): the bench's no-op baseline is this very process with decisions that do
   * nothing. @default none
   */
  readonly quotaHandlers?: (deps: HandlerDeps) => Partial<GrpcServerOptions['quota']>;
}

/** The composition root: assembles the capabilities that the wire* files build. */
export async function startApp(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<App> {
  // First: a missing TLS file or a key that does not match fails before anything starts.
  const credentials = loadServerCredentials(config.tls);
  const stops = new Stops(logger);
  try {
    const database = stops.own(await wireDatabase(config, logger));
    const { db, feed } = database;
    // Cluster-wide jobs run once per interval across the replicas, recorded under this name.
    const jobs = new JobRegistry(new PgLeaderLock(db), logger, {
      runLog: new PgTaskRunLog(db, config.hostName),
    });
    stops.push(() => jobs.stop());

    const metrics = new Metrics();
    // Aborted when shutdown starts: streams end so that draining does not wait on them.
    const shutdown = new AbortController();
    // One listener per open stream: hundreds are expected, not a leak.
    setMaxListeners(0, shutdown.signal);
    const base = {
      middleware: [logCalls(logger, metrics, config.logFailedCallsPerSecond)],
      shutdown: shutdown.signal,
    };

    // First: every other capability's handlers run inside the chain it completes.
    const auth = stops.own(await wireAuth(config, logger, db, feed, base));
    const { deps } = auth;
    const load = stops.own(await wireLoad(config, logger, db, feed, deps));
    // Before the decision capabilities: they tell it every answer and ask it for blocks.
    const audit = stops.own(await wireAudit(config, logger, db, feed, deps));
    const hooks: DecisionHooks = {
      listener: fanOut(audit.listener, metrics.decisions),
      blocks: audit.blocks,
      onBatch: (store, items) => metrics.decisionBatch(store, items),
      onItemError: (method, code) => metrics.itemFailed(method, code),
    };
    const limits = stops.own(await wireLimits(config, logger, db, feed, load.hub, deps, hooks));
    const quotas = stops.own(await wireQuotas(config, logger, db, feed, load.hub, deps, hooks));
    const tasks = stops.own(await wireTasks(config, logger, db, jobs, deps));
    const dashboard = stops.own(
      await wireDashboard(
        logger,
        {
          load: load.admin,
          audit: audit.reports,
          quotas: quotas.usage,
          timezone: config.timezone,
          databaseAvailable: () => db.available,
        },
        deps,
      ),
    );
    const capabilities: readonly Omit<Capability<unknown>, 'stop'>[] = [
      database,
      auth,
      load,
      audit,
      limits,
      quotas,
      tasks,
      dashboard,
    ];

    const server = new GrpcServer({
      logger,
      limits: config.server,
      quota: {
        ...limits.handlers.quota,
        ...load.handlers.quota,
        ...quotas.handlers.quota,
        ...options.quotaHandlers?.(deps),
      },
      admin: {
        ...limits.handlers.admin,
        ...load.handlers.admin,
        ...auth.handlers.admin,
        ...quotas.handlers.admin,
        ...audit.handlers.admin,
        ...tasks.handlers.admin,
        ...dashboard.handlers.admin,
      },
      onShutdown: () => shutdown.abort(),
    });
    const health = followHealth(
      server,
      capabilities.flatMap((c) => c.health),
      db,
    );
    for (const job of [...capabilities.flatMap((c) => c.jobs), health.job]) jobs.register(job);
    jobs.start();
    metrics.addGauges(capabilities.flatMap((c) => c.gauges ?? []));
    metrics.followJobs(() => jobs.list());

    const port = await server.listen(config.host, config.port, credentials);
    stops.push(() => server.shutdown(0));
    const metricsPort = config.metricsPort === 0 ? 0 : await metrics.listen(config.metricsPort);
    stops.push(() => metrics.close());
    health.update();
    logger.info(
      {
        host: config.host,
        port,
        metricsPort,
        embedded: config.databaseUrl === undefined,
        tls: tlsMode(config.tls),
        limits: config.server,
      },
      'quota-authority listening',
    );

    return {
      port,
      metricsPort,
      databaseUrl: database.url,
      loadSamples: () => load.sampling.samples,
      loadWatchers: () => load.hub.watching,
      jobs: () => jobs.list(),
      async stop(graceMs = 10_000) {
        health.stopping();
        logger.info({ graceMs }, 'shutting down: NOT_SERVING, draining calls');
        await server.shutdown(graceMs);
        await stops.run();
        logger.info('stopped');
        logger.flush();
      },
    };
  } catch (err) {
    await stops.run();
    throw err;
  }
}
