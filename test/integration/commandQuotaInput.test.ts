import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import {
  DeleteCommandQuotaRuleRequest,
  GetUserTierRequest,
  SetUserTierRequest,
  UpsertCommandQuotaRuleRequest,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import {
  CheckCommandQuotaRequest,
  CheckCommandQuotaResponse,
  GetQuotaStatusRequest,
  RecordExecutionRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { CommandQuotaRule } from '../../clients/typescript/src/gen/quota/v1/types.js';
import { type RawAnswer, RawClient, encode } from '../support/rawClient.js';
import { anyBody, requestMessage } from '../support/requestArbitraries.js';
import { rowCounter, settledCounts, type RowCounts } from '../support/rowCounts.js';
import { flushBuffers } from '../support/flushBuffers.js';
import { expectRefused as refused } from '../support/expectRefused.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

// Bad input to the command-quota methods, over gRPC through a real server: INVALID_ARGUMENT
// naming the field (the invalid-field trailer), and nothing written. Then a property: any
// CheckCommandQuota or RecordExecution request is answered OK or with a status that says what
// is wrong with it, never INTERNAL.

const TOKEN = 'command-quota-input-test-admin-token-0123456789';
const Q = '/quota.v1.QuotaService/';
const A = '/quota.v1.AdminService/';
const CHECK = `${Q}CheckCommandQuota`;
const RECORD = `${Q}RecordExecution`;

let db: TestDatabase;
let server: TestServer;
let raw: RawClient;
let counts: () => Promise<RowCounts>;
/** Reservations of alice/shell, alice/code and bob/shell, for the requests below to name. */
const reservations: string[] = [];

const checkBody = (r: Partial<CheckCommandQuotaRequest>) =>
  encode(
    CheckCommandQuotaRequest,
    CheckCommandQuotaRequest.fromPartial({ userId: 'alice', commandType: 'shell', ...r }),
  );
const recordBody = (r: Partial<RecordExecutionRequest>) =>
  encode(
    RecordExecutionRequest,
    RecordExecutionRequest.fromPartial({ userId: 'alice', commandType: 'shell', ...r }),
  );
const upsertBody = (r: Partial<CommandQuotaRule>) =>
  encode(UpsertCommandQuotaRuleRequest, {
    rule: CommandQuotaRule.fromPartial({ userId: 'alice', commandType: 'shell', daily: 5, ...r }),
  });

/** Row counts of every table, and every command-quota table's content. */
async function written() {
  const content = await db.query<{ t: string; digest: string }>(
    `SELECT 'usage' AS t, md5(coalesce(string_agg(u::text, ',' ORDER BY u::text), '')) AS digest
       FROM command_usage u
     UNION ALL SELECT 'reservations', md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), ''))
       FROM command_reservations r
     UNION ALL SELECT 'rules', md5(coalesce(string_agg(q::text, ',' ORDER BY q::text), ''))
       FROM command_quota_rules q
     UNION ALL SELECT 'tiers', md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))
       FROM user_tiers t`,
  );
  return { rows: await counts(), content: content.rows };
}

/** The call answers INVALID_ARGUMENT naming `field`, and nothing was written. */
const expectRefused = (path: string, body: Buffer, field: string): Promise<RawAnswer> =>
  refused(raw, written, path, body, field);

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, {
    QUOTA_ADMIN_TOKEN: TOKEN,
    QUOTA_DB_TIMEOUT_MS: '5000',
    // The replica samples its own load once, at start: later samples would add rows.
    QUOTA_LOAD_INTERVAL_MS: '600000',
  });
  raw = new RawClient(server.address, TOKEN);
  counts = await rowCounter(db, () => flushBuffers(server.client));
  for (const [userId, commandType] of [
    ['alice', 'shell'],
    ['alice', 'code'],
    ['bob', 'shell'],
    ['alice', 'shell'],
  ] as const) {
    const answer = await raw.unary(CHECK, checkBody({ userId, commandType }));
    expect(answer.code).toBe(status.OK);
    reservations.push(CheckCommandQuotaResponse.decode(answer.body!).reservationId);
  }
  // One of them settled: settling it again is FAILED_PRECONDITION.
  expect((await raw.unary(RECORD, recordBody({ reservationId: reservations[3] }))).code).toBe(
    status.OK,
  );
  // The start's own load sample reaches load_history on the next flush: wait it out.
  await settledCounts(counts);
});

afterAll(async () => {
  raw?.close();
  await server?.stop();
  await db?.drop();
});

describe('CheckCommandQuota', () => {
  it.each<[string, Partial<CheckCommandQuotaRequest>]>([
    ['user_id', { userId: '' }],
    ['user_id', { userId: '*' }],
    ['command_type', { commandType: '' }],
    ['command_type', { commandType: '*' }],
    ['command_type', { commandType: 'rm -rf' }],
    ['command_type', { commandType: 'x'.repeat(65) }],
    ['user_id', { userId: 'u'.repeat(257) }],
    ['cost', { cost: 1001 }],
    ['cost', { cost: 4_294_967_295 }],
    ['user_id', { userId: 'al\u0000ice' }],
    ['command_type', { commandType: 'shell\u0000' }],
    ['host', { host: 'exec\u00001' }],
    ['request_id', { requestId: '\u0000' }],
  ])('refuses a bad %s: %j', async (field, r) => {
    await expectRefused(CHECK, checkBody(r), field);
  });

  it('admits cost 1,000 (the bound) and cost 0 as 1', async () => {
    // The default rule of command type "test" admits 1,000 a day.
    const at = await raw.unary(
      CHECK,
      checkBody({ userId: 'bound', commandType: 'test', cost: 1000 }),
    );
    expect(CheckCommandQuotaResponse.decode(at.body!)).toMatchObject({ allowed: true });
    expect(CheckCommandQuotaResponse.decode(at.body!).periods[0]!.used).toBe(1000);
    const zero = await raw.unary(CHECK, checkBody({ userId: 'bound', cost: 0, commandType: 'x' }));
    expect(CheckCommandQuotaResponse.decode(zero.body!).periods[0]!.used).toBe(1);
  });
});

describe('RecordExecution', () => {
  it.each<[string, Partial<RecordExecutionRequest>]>([
    ['user_id', { userId: '' }],
    ['command_type', { commandType: '' }],
    ['command_type', { commandType: '*' }],
    ['duration', { duration: { seconds: -1, nanos: 0 } }],
    ['duration', { duration: { seconds: 0, nanos: -1 } }],
    ['duration', { duration: { seconds: 32 * 86_400, nanos: 0 } }],
    ['cpu_percent', { cpuPercent: -0.5 }],
    ['cpu_percent', { cpuPercent: NaN }],
    ['cpu_percent', { cpuPercent: 102_401 }],
    ['memory_bytes', { memoryBytes: 2 ** 53 }],
    ['started_at', { startedAt: new Date('2300-01-01T00:00:00Z') }],
    ['started_at', { startedAt: new Date('1999-12-31T23:59:59Z') }],
    ['status', { status: 'exploded' }],
    ['reservation_id', { reservationId: 'not-a-reservation' }],
    ['reservation_id', { reservationId: '00000000-0000-0000-0000-00000000000G' }],
    ['reservation_id', { reservationId: '6F9619FF-8B86-D011-B42D-00C04FC964FF' }],
    ['user_id', { userId: 'al\u0000ice' }],
    ['command_type', { commandType: 'sh\u0000ell' }],
    ['host', { host: '\u0000' }],
    ['request_id', { requestId: 'r\u00001' }],
    ['reservation_id', { reservationId: '\u0000' }],
  ])('refuses a bad %s: %j', async (field, r) => {
    await expectRefused(RECORD, recordBody({ requestId: 'ok-1', ...r }), field);
  });

  it('refuses a bad field even when the reservation is unknown or settled', async () => {
    await expectRefused(
      RECORD,
      recordBody({ reservationId: reservations[3], cpuPercent: -1 }),
      'cpu_percent',
    );
    await expectRefused(
      RECORD,
      recordBody({ reservationId: '00000000-0000-4000-8000-000000000001', userId: '' }),
      'user_id',
    );
  });
});

describe('the admin methods and GetQuotaStatus', () => {
  it.each<[string, Partial<CommandQuotaRule>]>([
    ['rule.daily', { daily: -1 }],
    ['rule.weekly', { weekly: -5 }],
    ['rule.monthly', { monthly: -1 }],
    ['rule.command_type', { commandType: '' }],
    ['rule.command_type', { commandType: 'a b' }],
    ['rule.user_id', { userId: 'x\u0000' }],
    ['rule.cpu_estimate_percent', { cpuEstimatePercent: -1 }],
    ['rule.memory_estimate_bytes', { memoryEstimateBytes: 2 ** 53 }],
  ])('UpsertCommandQuotaRule refuses a bad %s: %j', async (field, r) => {
    await expectRefused(`${A}UpsertCommandQuotaRule`, upsertBody(r), field);
  });

  it('SetUserTier refuses an unknown tier and a bad user; the other methods a bad user', async () => {
    for (const tier of ['gold', '', 'Premium', 'premium\u0000']) {
      await expectRefused(
        `${A}SetUserTier`,
        encode(SetUserTierRequest, { userId: 'a', tier }),
        'tier',
      );
    }
    for (const userId of ['', '*', 'a\u0000']) {
      await expectRefused(
        `${A}SetUserTier`,
        encode(SetUserTierRequest, { userId, tier: 'premium' }),
        'user_id',
      );
      await expectRefused(`${A}GetUserTier`, encode(GetUserTierRequest, { userId }), 'user_id');
      await expectRefused(
        `${Q}GetQuotaStatus`,
        encode(GetQuotaStatusRequest, { userId }),
        'user_id',
      );
    }
    await expectRefused(
      `${A}DeleteCommandQuotaRule`,
      encode(DeleteCommandQuotaRuleRequest, { userId: '*', commandType: 'a\u0000' }),
      'command_type',
    );
  });
});

describe('any CheckCommandQuota or RecordExecution request', () => {
  /** Answers that say what is wrong with the request (or OK). */
  const ANSWERS = new Set([
    status.OK,
    status.INVALID_ARGUMENT,
    status.NOT_FOUND,
    status.FAILED_PRECONDITION,
  ]);
  /** Mostly text the service accepts, so that many requests get as far as the database. */
  const text = (...valid: string[]) =>
    fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom(...valid) },
      { weight: 1, arbitrary: fc.constantFrom('', '*') },
      { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
      { weight: 1, arbitrary: fc.constantFrom('a\u0000', 'x'.repeat(300), 'é'.repeat(40)) },
    );
  const userId = text('alice', 'bob', 'carol');
  const commandType = text('shell', 'code', 'test');
  const optional = (...valid: string[]) => fc.oneof(fc.constant(''), text(...valid));
  // The reservations are read when a run is generated: they exist by then.
  const known = fc.integer({ min: 0, max: 3 }).map((i) => reservations[i]!);
  const reservationId = fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    { weight: 4, arbitrary: known },
    { weight: 2, arbitrary: fc.uuid({ version: 4 }) },
    { weight: 1, arbitrary: optional('not-a-uuid') },
  );
  const double = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(0, -0, 12.5, 100, 102_400) },
    { weight: 1, arbitrary: fc.constantFrom(-1, 102_401, NaN, Infinity, 5e-324) },
    { weight: 1, arbitrary: fc.double() },
  );
  const checks = fc
    .record({
      userId,
      commandType,
      host: optional('exec-1'),
      requestId: optional('req-1', 'req-2'),
      cost: fc.oneof(fc.constantFrom(0, 1, 1000, 1001, 2 ** 32 - 1), fc.nat({ max: 2000 })),
    })
    .map((r) => ({ path: CHECK, body: checkBody(r) }));
  const records = fc
    .record({
      reservationId,
      requestId: optional('rec-1', 'rec-2'),
      userId,
      commandType,
      host: optional('exec-1'),
      startedAt: fc.option(
        fc
          .oneof(
            {
              weight: 4,
              arbitrary: fc.date({ min: new Date('2020-01-01'), max: new Date('2030-01-01') }),
            },
            {
              weight: 1,
              arbitrary: fc.date({ min: new Date('1990-01-01'), max: new Date('2300-01-01') }),
            },
          )
          .filter((d) => !Number.isNaN(d.getTime())),
        { nil: undefined },
      ),
      duration: fc.option(
        fc.oneof(
          {
            weight: 4,
            arbitrary: fc.record({
              seconds: fc.integer({ min: 0, max: 3600 }),
              nanos: fc.integer({ min: 0, max: 999_999_999 }),
            }),
          },
          {
            weight: 1,
            arbitrary: fc.record({
              seconds: fc.integer({ min: -10, max: 40 * 86_400 }),
              nanos: fc.integer({ min: -999_999_999, max: 999_999_999 }),
            }),
          },
        ),
        { nil: undefined },
      ),
      cpuPercent: double,
      memoryBytes: fc.oneof(
        { weight: 4, arbitrary: fc.nat() },
        { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 53 - 1, 2 ** 53) },
      ),
      exitCode: fc.oneof(fc.constantFrom(0, 1), fc.integer()),
      status: fc.constantFrom(
        '',
        'completed',
        'failed',
        'timeout',
        'cancelled',
        'not_started',
        'x',
      ),
    })
    .map((r) => ({ path: RECORD, body: recordBody(r) }));
  const rawBodies = fc.oneof(
    anyBody(requestMessage(CHECK)).map((b) => ({ path: CHECK, body: Buffer.from(b) })),
    anyBody(requestMessage(RECORD)).map((b) => ({ path: RECORD, body: Buffer.from(b) })),
  );

  it('is answered OK, INVALID_ARGUMENT, NOT_FOUND or FAILED_PRECONDITION, never INTERNAL; a refusal writes nothing', async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 2, arbitrary: checks },
          { weight: 3, arbitrary: records },
          { weight: 1, arbitrary: rawBodies },
        ),
        async ({ path, body }) => {
          const before = await written();
          const answer = await raw.unary(path, body);
          const what = `${path} ${body.toString('hex').slice(0, 200)} -> ${status[answer.code]} ${answer.field ?? ''} ${answer.details}`;
          expect(ANSWERS.has(answer.code), what).toBe(true);
          seen.set(status[answer.code], (seen.get(status[answer.code]) ?? 0) + 1);
          if (answer.code === status.INVALID_ARGUMENT) expect(answer.field, what).toBeTruthy();
          if (answer.code !== status.OK) expect(await written(), what).toEqual(before);
        },
      ),
      { numRuns: 200 },
    );
    console.log('command quota requests answered:', Object.fromEntries(seen));
    // Both kinds were exercised: requests served and requests refused.
    expect(seen.get('OK')).toBeGreaterThan(15);
    expect(seen.get('INVALID_ARGUMENT')).toBeGreaterThan(50);
  });
});
