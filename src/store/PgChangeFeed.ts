import pg from 'pg';
import type { ChangeFeed } from '../core/ports.js';
import type { Logger } from '../log.js';

/**
 * LISTENs on one dedicated connection (a pooled one would be handed to other work) and
 * reconnects with backoff when it drops; after a reconnect, listeners are told that changes
 * may have been missed.
 */
export class PgChangeFeed implements ChangeFeed {
  private client: pg.Client | undefined;
  private readonly changeListeners: ((channel: string, payload: string) => void)[] = [];
  private readonly reconnectListeners: (() => void)[] = [];
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private ping: NodeJS.Timeout | undefined;
  private connectedOnce = false;

  constructor(
    private readonly url: string,
    private readonly channels: readonly string[],
    private readonly logger: Logger,
  ) {}

  onChange(listener: (payload: string) => void): void {
    this.changeListeners.push((_channel, payload) => listener(payload));
  }

  /** Every notification on every channel of this feed. */
  onNotification(listener: (channel: string, payload: string) => void): void {
    this.changeListeners.push(listener);
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  /** Connects; resolves once listening, or rejects if the first connection fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  /** NOTIFY on this feed's connection; a no-op while it is down (callers fall back to polling). */
  async notify(channel: string, payload: string): Promise<void> {
    await this.client?.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      query_timeout: 3000,
    });
    client.on('notification', (msg) => {
      for (const l of this.changeListeners) l(msg.channel, msg.payload ?? '');
    });
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      void client.end().catch(() => undefined);
      if (this.stopped) return;
      this.logger.warn({ err: err?.message }, 'change feed lost; reconnecting');
      this.retry(500);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      for (const channel of this.channels)
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    // Stopped while this connection was being made: it is not kept.
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    // A half-open connection delivers nothing and reports nothing: a ping every few seconds
    // notices it long before TCP keepalive would.
    clearInterval(this.ping);
    this.ping = setInterval(() => {
      if (this.client === client) client.query('SELECT 1').catch((err: Error) => lost(err));
    }, 5000);
    this.ping.unref();
    if (this.connectedOnce) for (const l of this.reconnectListeners) l();
    this.connectedOnce = true;
  }

  private retry(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.connect().catch(() => this.retry(Math.min(delayMs * 2, 5000)));
    }, delayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.ping);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
