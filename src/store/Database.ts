import { EventEmitter } from 'node:events';
import pg from 'pg';
import { StoreNotMigratedError, StoreTimeoutError, StoreUnavailableError } from '../errors.js';
import type { Logger } from '../log.js';

/** Options of {@link Database}. */
export interface DatabaseOptions {
  readonly url: string;
  /** Bound on a decision's query, including the wait for a pooled connection, in ms. */
  readonly timeoutMs: number;
  /** Bound on other queries (admin writes, listings), in ms. */
  readonly slowTimeoutMs?: number;
  readonly poolSize: number;
  readonly logger: Logger;
  /** Time between reachability probes while the database is down, in ms. @default 250 */
  readonly probeIntervalMs?: number;
  /** Bound on an operator's report (violations, statistics, dashboard), in ms. @default 10000 */
  readonly reportTimeoutMs?: number;
  /**
   * Whether migrations are pending now: while they are, an answer naming a missing table,
   * column, function or schema is StoreNotMigratedError. @default never
   */
  readonly migrationsPending?: () => boolean;
}

/** Connections for operators' reports: a burst of them never takes the decisions' pool. */
const REPORT_POOL_SIZE = 2;

export interface QueryOptions {
  /** Prepared-statement name: the hot path prepares once per connection. */
  readonly name?: string;
  /** Use the decision bound (timeoutMs) instead of the slower admin bound. */
  readonly fast?: boolean;
}

/** A connection's query method: what transaction and session work is given. */
export type Queryable = Pick<pg.PoolClient, 'query'>;

/** What {@link Database.withConnection} gives its work beside the connection. */
export interface Session {
  /** The bound of admin statements, in ms: session work races its own statements against it. */
  readonly timeoutMs: number;
  /**
   * Destroys the connection when the work ends instead of returning it to the pool, so that what
   * the server keeps for the session (an advisory lock) goes with it.
   */
  discard(): void;
}

/**
 * The pool every store uses, with a breaker. A frozen server keeps sockets open, so nothing on
 * the server side ever times out: each call is raced against a timer on this side, and after a
 * timeout or connection failure every call fails at once (StoreUnavailableError) until a probe
 * on a fresh connection gets an answer again. Emits 'down' and 'up'.
 */
export class Database extends EventEmitter {
  readonly pool: pg.Pool;
  private readonly reportPool: pg.Pool;
  private readonly reportTimeoutMs: number;
  private up = true;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly slowTimeoutMs: number;
  private lastAnswerAt = performance.now();

  constructor(private readonly options: DatabaseOptions) {
    super();
    this.slowTimeoutMs = options.slowTimeoutMs ?? Math.max(2000, options.timeoutMs * 4);
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize,
      connectionTimeoutMillis: this.slowTimeoutMs,
      idleTimeoutMillis: 30_000,
      application_name: 'quota-authority',
    });
    this.reportTimeoutMs = options.reportTimeoutMs ?? 10_000;
    // The server cancels a report past its bound itself: a read the caller gave up on does not
    // keep a backend busy.
    this.reportPool = new pg.Pool({
      connectionString: options.url,
      max: REPORT_POOL_SIZE,
      connectionTimeoutMillis: this.reportTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: this.reportTimeoutMs,
      application_name: 'quota-authority-reports',
    });
    this.reportPool.on('connect', (client) => client.on('error', () => undefined));
    this.reportPool.on('error', () => undefined);
    // A client being ended (pool.end at shutdown) or between owners can still receive the
    // server's FATAL (a backend terminated, a database dropped): with no listener of its own
    // that 'error' event would end the process. Query errors reach their callers regardless.
    this.pool.on('connect', (client) => client.on('error', () => undefined));
    // An idle client whose server went away emits here; without a listener it would crash.
    this.pool.on('error', (err) => {
      // After close, connections still closing see the server's own shutdown: not news.
      // The message and code only: pg-pool hangs the whole client on the error.
      if (!this.closed)
        options.logger.warn(
          { err: err.message, code: (err as { code?: unknown }).code },
          'idle database connection failed',
        );
    });
  }

  /**
   * Opens `count` connections now, so that the first burst of decisions does not pay for
   * connection set-up and authentication within its timeout.
   */
  async warm(count = this.options.poolSize): Promise<void> {
    const opened = await Promise.allSettled(
      Array.from({ length: count }, () => this.pool.connect()),
    );
    // Every connection that opened goes back, even when another failed (the server's
    // connection limit): one kept out would make close() wait for it for ever.
    for (const o of opened) if (o.status === 'fulfilled') o.value.release();
    const failed = opened.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Whether the last call or probe got an answer. */
  get available(): boolean {
    return this.up;
  }

  /** The pool's connections now: open, idle among them, and callers waiting for one. */
  get poolUse(): { readonly total: number; readonly idle: number; readonly waiting: number } {
    return {
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
    };
  }

  /** One statement, bounded; throws StoreUnavailableError when the database does not answer. */
  async query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
    opts: QueryOptions = {},
  ): Promise<pg.QueryResult<R>> {
    const timeoutMs = opts.fast ? this.options.timeoutMs : this.slowTimeoutMs;
    // pg reads query_timeout from the query config too; its types do not declare it there.
    // It only frees (destroys) a connection stuck on a frozen server, long after the call was
    // given up: pg's timer fails a query even when its answer is there, unread behind a busy
    // event loop, and a decision committed must not be reported as the database being down.
    const config: pg.QueryConfig & { query_timeout: number } = {
      text,
      values,
      name: opts.name,
      query_timeout: Math.max(2 * timeoutMs, this.slowTimeoutMs),
    };
    // Not pool.query: it destroys the connection on any error, and a connection that answered
    // with an error of the server's own (a value refused, a lock timeout) is a good connection.
    return this.bounded(timeoutMs, () => this.withConnection((client) => client.query<R>(config)));
  }

  /**
   * One read for an operator (a report over a time range, the dashboard), on a small pool of its
   * own and bounded by the report timeout on both sides. However long it takes, it never marks
   * the database down: a heavy read is not an outage, and the decisions keep their pool and
   * their breaker. Throws StoreUnavailableError when it does not answer in time.
   */
  async report<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    if (!this.up) throw new StoreUnavailableError('database is not answering');
    const config: pg.QueryConfig & { query_timeout: number } = {
      text,
      values,
      query_timeout: this.reportTimeoutMs + 1000,
    };
    let timer: NodeJS.Timeout | undefined;
    const pending = this.reportPool.query<R>(config);
    pending.catch(() => undefined);
    try {
      return await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new StoreUnavailableError(`report took longer than ${this.reportTimeoutMs} ms`),
              ),
            this.reportTimeoutMs,
          );
        }),
      ]);
    } catch (err) {
      if (err instanceof pg.DatabaseError && err.code === '57014') {
        throw new StoreUnavailableError(`report took longer than ${this.reportTimeoutMs} ms`, {
          cause: err,
        });
      }
      if (err instanceof Error && isConnectivityError(err)) {
        throw new StoreUnavailableError(`database unreachable: ${err.message}`, { cause: err });
      }
      throw this.answered(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `work` in one transaction on one connection, bounded by the slow timeout. Statements
   * inside are bounded on the server as well (statement_timeout), so work the caller gave up on
   * does not commit much later.
   */
  async transaction<T>(work: (client: Queryable) => Promise<T>): Promise<T> {
    return this.bounded(this.slowTimeoutMs, () =>
      this.withConnection(async (client) => {
        await client.query('BEGIN');
        try {
          await client.query(`SET LOCAL statement_timeout = ${Math.ceil(this.slowTimeoutMs)}`);
          const result = await work(client);
          await client.query('COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }),
    );
  }

  /**
   * Runs `work` on one pooled connection of its own, for state that lives in a session (an
   * advisory lock). Only getting the connection is bounded here; `work` bounds its statements
   * (by `session.timeoutMs`). A connection that failed, or that `work` discarded, is destroyed,
   * not returned to the pool.
   */
  async withConnection<T>(work: (client: Queryable, session: Session) => Promise<T>): Promise<T> {
    if (!this.up) throw new StoreUnavailableError('database is not answering');
    const client = await this.pool.connect();
    let discarded = false;
    const session: Session = {
      timeoutMs: this.slowTimeoutMs,
      discard: () => void (discarded = true),
    };
    // A checked-out client has no pool listener: a connection cut by the server (restart,
    // failover) would otherwise be an unhandled 'error' event and end the process.
    let lost: Error | undefined;
    const onError = (err: Error) => {
      lost = err;
    };
    client.on('error', onError);
    let broken: unknown;
    try {
      return await work(client, session);
    } catch (err) {
      broken = err;
      throw lost ?? err;
    } finally {
      client.off('error', onError);
      const destroy =
        lost ?? (broken instanceof Error && isConnectivityError(broken) ? broken : undefined);
      client.release(destroy ?? discarded);
    }
  }

  private async bounded<T>(timeoutMs: number, work: () => Promise<T>): Promise<T> {
    if (!this.up) throw new StoreUnavailableError('database is not answering');
    let timer: NodeJS.Timeout | undefined;
    const pending = work();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        // One turn of the event loop first: an answer that arrived while the loop was busy is
        // read before the call is given up, so it is not taken for a database that is down.
        () =>
          setImmediate(() =>
            reject(new StoreTimeoutError(`database did not answer within ${timeoutMs} ms`)),
          ),
        timeoutMs,
      );
    });
    // The losing promise still settles later; keep its rejection from going unhandled.
    pending.catch(() => undefined);
    try {
      const result = await Promise.race([pending, timeout]);
      this.lastAnswerAt = performance.now();
      return result;
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        // A call can time out behind a busy pool while the server answers others: only when
        // nothing at all was answered for a whole timeout is the database taken as down.
        if (performance.now() - this.lastAnswerAt >= timeoutMs) this.markDown(err);
        throw err;
      }
      if (err instanceof Error && isConnectivityError(err)) {
        const unavailable = new StoreUnavailableError(`database unreachable: ${err.message}`, {
          cause: err,
        });
        this.markDown(unavailable);
        throw unavailable;
      }
      throw this.answered(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * What an error the server answered with (not a silence) is passed on as. No session to give
   * (53300: the server's or the role's connection limit) fails this call as the store unable to
   * decide, without taking the database for down: the pool's open connections still work. A
   * table, column, function or schema that is missing while migrations are pending is
   * StoreNotMigratedError; once migrated, the same answers are this version's own faults and
   * pass as they are.
   */
  private answered(err: unknown): unknown {
    if (!(err instanceof pg.DatabaseError)) return err;
    if (err.code === '53300') {
      return new StoreUnavailableError(`database has no connection to give: ${err.message}`, {
        cause: err,
      });
    }
    if (MISSING_SCHEMA.has(err.code ?? '') && (this.options.migrationsPending?.() ?? false)) {
      return new StoreNotMigratedError(`database is not migrated: ${err.message}`, { cause: err });
    }
    return err;
  }

  private markDown(err: Error): void {
    if (!this.up || this.closed) return;
    this.up = false;
    this.options.logger.error(
      { err: err.message },
      'database not answering: failure mode in force',
    );
    this.emit('down');
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.closed) return;
    this.probeTimer = setTimeout(() => void this.probe(), this.options.probeIntervalMs ?? 250);
  }

  /** Probes on a fresh connection: pooled ones may be stuck behind a frozen server. */
  private async probe(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: 1000,
      query_timeout: 1000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      if (this.closed) return;
      this.up = true;
      this.lastAnswerAt = performance.now();
      this.options.logger.info('database answering again');
      this.emit('up');
    } catch {
      this.scheduleProbe();
    } finally {
      void client.end().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.probeTimer);
    await Promise.all([this.pool.end(), this.reportPool.end()]);
  }
}

/**
 * SQLSTATEs of a statement naming what the database does not have: a table, column, function
 * or schema.
 */
const MISSING_SCHEMA = new Set(['42P01', '42703', '42883', '3F000']);

/** Errors that mean "no answer from the server", as opposed to an answer that is an error. */
export function isConnectivityError(err: Error): boolean {
  // The server answered with an error of its own (a lock timeout, a bad value): it is there.
  if (err instanceof pg.DatabaseError) {
    const code = err.code ?? '';
    // Class 08: connection exception; 57P0x: the server is shutting down or restarting.
    return code.startsWith('08') || code.startsWith('57P0');
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (
      ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH'].includes(
        code,
      )
    ) {
      return true;
    }
  }
  return /timeout|terminated|Connection terminated|not queryable/i.test(err.message);
}
