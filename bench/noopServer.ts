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
 * environment `serve` reads, and run as `serve` runs (src/app/serve.ts); SIGTERM stops it.
 */
import { serve } from '../src/app/serve.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { noopHandlers } from './noopHandlers.js';

const config = loadConfig();
await serve(config, createLogger(config.logLevel), { quotaHandlers: noopHandlers });
