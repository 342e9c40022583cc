import { loadConfig } from '../src/config.js';
import { closedLoop, measured, Tally, type Outcome } from './measure.js';
import { openLoop } from './openLoop.js';
import { PeerLimiter } from './PeerLimiter.js';
import type { ScenarioResult } from './runServerSuite.js';
import { CONCURRENCY, pause, RATE, SECONDS, settle, WARMUP_SECONDS } from './settings.js';
import type { BenchDatabase } from './startBenchDatabase.js';
import { HOT_KEY, keyOf, type PeerScenario } from './suite.js';

/** How the report names the peer's scenarios. */
export const PEER_LABELS: Record<PeerScenario, string> = {
  keys: 'peer: RateLimiterPostgres, 10,000 keys',
  hot: 'peer: RateLimiterPostgres, 1 hot key',
};

/**
 * The peer's scenarios (`wanted`): rate-limiter-flexible's RateLimiterPostgres.consume() in this
 * process against `db`, on the service's keys (10,000, or the one hot key), after a warm-up on
 * keys of its own: a closed loop at CONCURRENCY in flight, then after a settling pause an open
 * loop at RATE. Its CPU is this process's (the client figure): there is no server.
 */
export async function runPeerSuite(
  db: BenchDatabase,
  wanted: ReadonlySet<PeerScenario>,
): Promise<Map<PeerScenario, ScenarioResult>> {
  const results = new Map<PeerScenario, ScenarioResult>();
  if (wanted.size === 0) return results;
  // As many connections as the service's pool has, so that both have the same to work with.
  const poolSize = loadConfig({
    QUOTA_DB_POOL_SIZE: process.env['QUOTA_DB_POOL_SIZE'],
  }).dbPoolSize;
  const peer = await PeerLimiter.start(db.url, poolSize);
  try {
    console.log(
      `\npeer: rate-limiter-flexible RateLimiterPostgres.consume() in this process, ${poolSize} connections: ${SECONDS} s per loop, ${CONCURRENCY} in flight, then ${RATE}/s offered`,
    );
    await closedLoop(
      new Tally('warm-up'),
      (n) => peer.consume(`warm-${n % 10_000}`),
      WARMUP_SECONDS,
    );
    for (const name of ['keys', 'hot'] as const) {
      if (!wanted.has(name)) continue;
      const call: (n: number) => Promise<Outcome> =
        name === 'keys' ? (n) => peer.consume(keyOf(n)) : () => peer.consume(HOT_KEY);
      await pause();
      const closed = await measured(
        undefined,
        () => closedLoop(new Tally(`${PEER_LABELS[name]}, ${CONCURRENCY} in flight`), call),
        db.root,
      );
      await settle();
      const open = await measured(
        undefined,
        () => openLoop(call, `${PEER_LABELS[name]}, ${RATE}/s offered`, (n) => n),
        db.root,
      );
      results.set(name, { closed, open });
    }
    return results;
  } finally {
    await peer.stop();
  }
}
