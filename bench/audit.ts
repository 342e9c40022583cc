/**
 * The cost of the violation audit on the hot path: CheckLimit at RATE calls/s offered where
 * nearly every call is denied (each denial is a violation to record), against two servers
 * started alike but for QUOTA_AUDIT=off and =on, measured in alternating rounds so that the
 * machine's drift falls on both. Each has its own embedded PostgreSQL (or DATABASE_URL).
 */
import { connect, RateLimitRule, Scope } from '@quota-authority/client';
import { CheckLimitRequest } from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import { CHECK_LIMIT } from './LightClient.js';
import { caller, closedLoop, measured, Tally } from './measure.js';
import { openLoop } from './openLoop.js';
import { RATE, settle, WARMUP_SECONDS } from './settings.js';
import { startServer, waitServing, type BenchServer } from './startServer.js';

/** Users the calls cycle through: each admitted once an hour, then denied. */
const USERS = 1000;
/** Rounds of (off, on). */
const ROUNDS = 2;

interface Side {
  readonly mode: 'off' | 'on';
  readonly server: BenchServer;
  readonly check: (r: CheckLimitRequest) => Promise<{ allowed: boolean; degraded: boolean }>;
  close(): void;
}

export async function auditBench(): Promise<void> {
  const sides: Side[] = [];
  try {
    for (const mode of ['off', 'on'] as const) {
      const server = await startServer({ QUOTA_AUDIT: mode });
      const client = connect({ address: server.address, token: server.token, deadlineMs: 10_000 });
      await waitServing(client);
      await client.admin.upsertRateLimitRule({
        rule: RateLimitRule.fromPartial({
          name: 'bench-deny',
          scope: Scope.SCOPE_USER,
          match: '*',
          limit: 1,
          window: { seconds: 3600, nanos: 0 },
        }),
      });
      const { call, close } = caller(
        server.address,
        CHECK_LIMIT,
        (req, md, cb) => client.raw.quota.checkLimit(req, md, cb),
        server.token,
      );
      sides.push({
        mode,
        server,
        check: call,
        close: () => {
          close();
          client.close();
        },
      });
    }
    console.log(
      `audit cost: CheckLimit at ${RATE}/s offered over ${USERS} users, each admitted once then denied; QUOTA_AUDIT off and on, ${ROUNDS} alternating rounds`,
    );
    const request = (n: number) =>
      CheckLimitRequest.fromPartial({ userId: `violator-${n % USERS}`, path: '/bench' });
    for (const side of sides) {
      await closedLoop(new Tally('warm-up'), (i) => side.check(request(i)), WARMUP_SECONDS);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const side of sides) {
        await settle();
        await measured(side.server.child.pid, () =>
          openLoop(side.check, `audit ${side.mode}, round ${round}, ${RATE}/s`, request),
        );
      }
    }
  } finally {
    for (const side of sides) {
      side.close();
      await side.server.stop();
    }
  }
}
