import { pino } from 'pino';
import type { App } from '../../src/app/App.js';
import { startApp } from '../../src/app/startApp.js';
import { loadConfig } from '../../src/config.js';

/** A server in the test process whose warnings are kept for assertions. */
export interface LoggedServer {
  readonly app: App;
  readonly address: string;
  /** Every line logged at warn or above, parsed. */
  readonly lines: { msg: string; [field: string]: unknown }[];
  stop(): Promise<void>;
}

/** Starts a server on 127.0.0.1:0 against `databaseUrl`, with `env` on top, logging to memory. */
export async function startLoggedServer(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<LoggedServer> {
  const lines: LoggedServer['lines'] = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => void lines.push(JSON.parse(line) as LoggedServer['lines'][0]) },
  );
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    QUOTA_HOST: '127.0.0.1',
    QUOTA_PORT: '0',
    QUOTA_METRICS_PORT: '0',
    QUOTA_AUTH: 'disabled',
    ...env,
  });
  const app = await startApp(config, logger);
  return {
    app,
    address: `127.0.0.1:${app.port}`,
    lines,
    stop: () => app.stop(1000),
  };
}
