import pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Outcome } from './measure.js';

/** The peer's table, its own in the bench's database; made anew for each run. */
const TABLE = 'bench_peer_limits';
/** The service's rule in the CheckLimit scenarios: 10^9 a minute, so that nothing is denied. */
const LIMIT = 1_000_000_000;
const WINDOW_S = 60;

const ALLOWED: Outcome = { allowed: true, degraded: false };
const DENIED: Outcome = { allowed: false, degraded: false };

/**
 * The peer baseline: rate-limiter-flexible's RateLimiterPostgres in this process, on a pg pool as
 * large as the service's (QUOTA_DB_POOL_SIZE), against the same database server; `consume(key)`
 * is one decision (one upsert statement, committed as the database commits by default).
 */
export class PeerLimiter {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly limiter: RateLimiterPostgres,
  ) {}

  static async start(url: string, poolSize: number): Promise<PeerLimiter> {
    const pool = new pg.Pool({ connectionString: url, max: poolSize });
    // An idle connection the database ends (it stops after the run) must not end the bench.
    pool.on('error', () => undefined);
    try {
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
      const limiter = await new Promise<RateLimiterPostgres>((resolve, reject) => {
        const made: RateLimiterPostgres = new RateLimiterPostgres(
          {
            storeClient: pool,
            storeType: 'pool',
            tableName: TABLE,
            points: LIMIT,
            duration: WINDOW_S,
          },
          (err) => (err ? reject(err) : resolve(made)),
        );
      });
      return new PeerLimiter(pool, limiter);
    } catch (err) {
      await pool.end();
      throw err;
    }
  }

  /** One decision for `key`: a denial is an outcome, as the service's is. */
  consume(key: string): Promise<Outcome> {
    return this.limiter.consume(key).then(
      () => ALLOWED,
      (res: unknown) => {
        if (res instanceof RateLimiterRes) return DENIED;
        throw res;
      },
    );
  }

  /** Drops the peer's table and closes the pool. */
  async stop(): Promise<void> {
    try {
      await this.pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
    } finally {
      await this.pool.end();
    }
  }
}
