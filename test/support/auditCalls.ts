import { RateLimitRule, Scope, type QuotaConnection } from '@quota-authority/client';
import type { AttackPattern } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { waitFor } from './waitFor.js';

/** What callers saw of a run of CheckLimit calls. */
export interface Seen {
  allowed: number;
  denied: number;
  /** Calls that ended in an error status (shed, unavailable...). */
  errors: number;
  degraded: number;
}

/** Runs `call(0..n-1)` with at most `concurrency` in flight; resolves when all have ended. */
export async function inFlight(
  n: number,
  concurrency: number,
  call: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await call(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
}

/** `n` CheckLimit calls `request(i)` through `clients[i % clients.length]`, counted by answer. */
export async function checkMany(
  clients: readonly QuotaConnection[],
  n: number,
  concurrency: number,
  request: (i: number) => Partial<CheckLimitRequest>,
): Promise<Seen> {
  const seen: Seen = { allowed: 0, denied: 0, errors: 0, degraded: 0 };
  await inFlight(n, concurrency, async (i) => {
    try {
      const answer = await clients[i % clients.length]!.quota.checkLimit(
        CheckLimitRequest.fromPartial(request(i)),
        { deadlineMs: 30_000 },
      );
      if (answer.degraded) seen.degraded++;
      if (answer.allowed) seen.allowed++;
      else seen.denied++;
    } catch {
      seen.errors++;
    }
  });
  return seen;
}

/** A rule of `limit` per minute on scope default `*`, with `r` changed. */
export function minuteRule(r: Partial<RateLimitRule> & { name: string }): RateLimitRule {
  return RateLimitRule.fromPartial({
    scope: Scope.SCOPE_USER,
    match: '*',
    limit: 1,
    window: { seconds: 60, nanos: 0 },
    ...r,
  });
}

let probes = 0;

/**
 * Upserts `rule` through the first client and waits until every client applies it: a probe
 * call names it. By default each probe is a user of its own, so probes deny nothing; a probe
 * of the rule's own key uses it up (the first admitted) and may deny.
 */
export async function upsertEverywhere(
  clients: readonly QuotaConnection[],
  rule: RateLimitRule,
  probe: (user: string) => Partial<CheckLimitRequest> = (userId) => ({ userId }),
): Promise<void> {
  await clients[0]!.admin.upsertRateLimitRule({ rule });
  for (const c of clients) {
    await waitFor(async () => {
      const answer = await c.quota.checkLimit(
        CheckLimitRequest.fromPartial(probe(`probe-${probes++}`)),
      );
      return answer.limits.some((l) => l.rule === rule.name);
    });
  }
}

/** The attack patterns GetViolations reports for the last hour (and a minute ahead). */
export async function attacks(client: QuotaConnection): Promise<AttackPattern[]> {
  const until = new Date(Date.now() + 60_000);
  const report = await client.admin.getViolations({
    since: new Date(until.getTime() - 3_600_000),
    until,
    rule: '',
    userId: '',
    ip: '',
    limit: 0,
  });
  return report.attacks;
}
