import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { RateLimitRule, Scope } from '@quota-authority/client';
import { healthCheck } from '../support/healthCheck.js';
import { ALL_METHODS, RawClient, type RawAnswer, type RawMethod } from '../support/rawClient.js';
import { anyBody, poisonedBody, requestMessage } from '../support/requestArbitraries.js';
import {
  CheckLimitsRequest,
  CheckLimitsResponse,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { rowCounter, settledCounts, type RowCounts } from '../support/rowCounts.js';
import { flushBuffers } from '../support/flushBuffers.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

/**
 * Property-based: random and malformed requests to every method of QuotaService and
 * AdminService (from the generated definitions), raw random bytes included. No answer is
 * INTERNAL or UNKNOWN (nor a hang or a lost server), and a request the service must refuse is
 * INVALID_ARGUMENT naming a field, with no table gaining or losing a row.
 */

const TOKEN = 'request-fuzz-test-admin-token-0123456789abcdef';
/** Answers that mean the service failed the caller rather than answered it. */
const FAILURES = new Set([
  status.INTERNAL,
  status.UNKNOWN,
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.CANCELLED,
  status.DATA_LOSS,
  // Every method of both services is implemented: a body that decodes reaches its handler.
  status.UNIMPLEMENTED,
]);

let db: TestDatabase;
let server: TestServer;
let raw: RawClient;
let counts: () => Promise<RowCounts>;

/** A method with bodies of its request type from `body`. */
const calls = (
  body: (method: RawMethod) => fc.Arbitrary<Uint8Array>,
  methods: readonly RawMethod[] = ALL_METHODS,
) =>
  fc
    .constantFrom(...methods)
    .chain((method) => body(method).map((bytes) => ({ method, bytes: Buffer.from(bytes) })));

/** A proto field path: load_avg_1m, rule.daily, hosts[2]; or several joined by |. */
const FIELD_PATH = /^[a-z][a-z0-9_]*(\[\d+\])?(\.[a-z][a-z0-9_]*(\[\d+\])?)*$|\|/;

/**
 * CheckLimits decides each check on its own: a poisoned check (the last one; see poisonedBody)
 * is its own INVALID_ARGUMENT naming a field, in an answer that is OK when the body decodes.
 * The others may be decided and counted: rows stay the same only when none was.
 */
function poisonedCheckLimits(answer: RawAnswer, what: string): { anyDecided: boolean } {
  const { results } = CheckLimitsResponse.decode(answer.body!);
  const last = results.at(-1)?.result;
  expect(last?.$case, what).toBe('error');
  if (last?.$case !== 'error') return { anyDecided: true };
  expect(last.value.code, what).toBe(status.INVALID_ARGUMENT);
  expect(last.value.field, what).toMatch(FIELD_PATH);
  return { anyDecided: results.some((r) => r.result?.$case === 'response') };
}

/** Field 1 (checks) entries at the top level of a CheckLimitsRequest body; -1 if unreadable. */
function topLevelChecks(bytes: Uint8Array): number {
  try {
    const reader = new BinaryReader(bytes);
    let n = 0;
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag === 10) {
        reader.bytes();
        n++;
        continue;
      }
      if ((tag & 7) === 4 || tag === 0) break;
      reader.skip(tag & 7);
    }
    return n;
  } catch {
    return -1;
  }
}

function leniently(bytes: Uint8Array): number {
  try {
    return CheckLimitsRequest.decode(bytes).checks.length;
  } catch {
    return -1;
  }
}

const describeCall = (method: RawMethod, bytes: Buffer, answer: RawAnswer) =>
  `${method.path} ${bytes.toString('hex').slice(0, 200)} -> ${status[answer.code]} ${answer.field ?? ''} ${answer.details}`;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, {
    QUOTA_ADMIN_TOKEN: TOKEN,
    QUOTA_HOST_NAME: 'fuzz-self',
    // The replica samples its own load once, at start: later samples would add rows.
    QUOTA_LOAD_INTERVAL_MS: '600000',
    QUOTA_DB_TIMEOUT_MS: '5000',
  });
  raw = new RawClient(server.address, TOKEN);
  counts = await rowCounter(db, () => flushBuffers(server.client));
  // A rule the fuzzed identifiers match, and a stored subnormal row the load queries read.
  await server.client.admin.upsertRateLimitRule({
    rule: RateLimitRule.fromPartial({
      name: 'fuzz-users',
      scope: Scope.SCOPE_USER,
      match: '*',
      limit: 1_000_000,
      window: { seconds: 3600, nanos: 0 },
    }),
  });
  await db.query(
    `INSERT INTO load_history (host, at, samples, cpu_percent, cpu_max, memory_percent,
       memory_max, disk_percent, disk_max, load_avg_1m, load_avg_1m_max, throttle_factor)
     SELECT 'exec-1', clock_timestamp() - make_interval(secs => s), 1, v, v, v, v, v, v, v, v, 1
       FROM (VALUES (1, 5e-324::float8), (2, 0::float8)) t(s, v)`,
  );
});

afterAll(async () => {
  raw?.close();
  await server?.stop();
  await db?.drop();
});

describe('requests the service must refuse', () => {
  it('are INVALID_ARGUMENT naming a field, and write nothing', async () => {
    // The start's own load sample reaches load_history on the next flush: wait it out.
    await settledCounts(counts);
    await fc.assert(
      fc.asyncProperty(
        calls((m) => poisonedBody(requestMessage(m.path))),
        async ({ method, bytes }) => {
          const before = await counts();
          const answer = await raw.call(method, bytes);
          const what = describeCall(method, bytes, answer);
          if (method.path.endsWith('/CheckLimits') && answer.code === status.OK) {
            if (!poisonedCheckLimits(answer, what).anyDecided)
              expect(await counts(), what).toEqual(before);
            return;
          }
          expect(answer.code, what).toBe(status.INVALID_ARGUMENT);
          expect(answer.field, what).toMatch(FIELD_PATH);
          expect(await counts(), what).toEqual(before);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('any request', () => {
  it('is answered, never INTERNAL, UNKNOWN or UNIMPLEMENTED, and the server stays up', async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        // A RevokeToken that hits the fuzzer's own token (a small id is likely) would rightly
        // make every later call UNAUTHENTICATED and end the exploration; it is fuzzed above.
        calls(
          (m) => anyBody(requestMessage(m.path)),
          ALL_METHODS.filter((m) => !m.path.endsWith('/RevokeToken')),
        ),
        async ({ method, bytes }) => {
          const answer = await raw.call(method, bytes);
          const what = describeCall(method, bytes, answer);
          expect(FAILURES.has(answer.code), what).toBe(false);
          if (answer.code === status.INVALID_ARGUMENT) expect(answer.field, what).toBeTruthy();
          seen.set(status[answer.code], (seen.get(status[answer.code]) ?? 0) + 1);
        },
      ),
      { numRuns: 300 },
    );
    // Both kinds were exercised: requests that were served and requests that were refused.
    expect(seen.get('OK')).toBeGreaterThan(10);
    expect(seen.get('INVALID_ARGUMENT')).toBeGreaterThan(10);
    expect(await healthCheck(server.address, '')).toBe('SERVING');
  });
});

describe('any CheckLimits request', () => {
  const method = ALL_METHODS.find((m) => m.path === '/quota.v1.QuotaService/CheckLimits')!;
  it('is one result per check (an answer or its own error), or refused as a whole', async () => {
    await fc.assert(
      fc.asyncProperty(anyBody(requestMessage(method.path)), async (bytes) => {
        const answer = await raw.call(method, Buffer.from(bytes));
        const what = describeCall(method, Buffer.from(bytes), answer);
        expect(FAILURES.has(answer.code), what).toBe(false);
        // A body past QUOTA_MAX_MESSAGE_BYTES (64 KiB by default) is refused before it is read.
        if (answer.code === status.RESOURCE_EXHAUSTED && bytes.length > 65_536) return;
        if (answer.code !== status.OK) {
          expect(answer.code, what).toBe(status.INVALID_ARGUMENT);
          expect(answer.field, what).toMatch(FIELD_PATH);
          return;
        }
        const { results } = CheckLimitsResponse.decode(answer.body!);
        // How many checks the body holds: as the server reads them one by one (each within its
        // length), or as the generated decoder reads a body that decodes whole (leniently here,
        // invalid UTF-8 as U+FFFD), which may read a malformed check past its length.
        const counts = [topLevelChecks(bytes), leniently(bytes)];
        expect(counts, what).toContain(results.length);
        for (const r of results) {
          expect(r.result, what).toBeDefined();
          if (r.result?.$case === 'error') {
            expect(r.result.value.code, what).toBe(status.INVALID_ARGUMENT);
            expect(r.result.value.field, what).toMatch(FIELD_PATH);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
