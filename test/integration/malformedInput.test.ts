import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import {
  DeleteRateLimitRuleRequest,
  GetHourlySummaryRequest,
  GetHourlySummaryResponse,
  GetLoadTrendRequest,
  GetLoadTrendResponse,
  GetResourceHealthRequest,
  ListThrottleEventsRequest,
  SetRateLimitRuleEnabledRequest,
  SetThrottleThresholdsRequest,
  UpsertRateLimitRuleRequest,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import {
  CheckLimitRequest,
  ReportLoadRequest,
  WatchLoadRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { RateLimitRule, Scope } from '../../clients/typescript/src/gen/quota/v1/types.js';
import { type RawAnswer, RawClient, encode } from '../support/rawClient.js';
import { rowCounter, settledCounts, type RowCounts } from '../support/rowCounts.js';
import { flushBuffers } from '../support/flushBuffers.js';
import { expectRefused as refused } from '../support/expectRefused.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

/** The admin token the server stores at start (QUOTA_ADMIN_TOKEN); raw calls send it. */
const TOKEN = 'malformed-input-test-admin-token-0123456789';
const Q = '/quota.v1.QuotaService/';
const A = '/quota.v1.AdminService/';

let db: TestDatabase;
let server: TestServer;
let raw: RawClient;
let counts: () => Promise<RowCounts>;

const checkLimit = (r: Partial<CheckLimitRequest>) =>
  encode(CheckLimitRequest, CheckLimitRequest.fromPartial(r));
const reportLoad = (r: Partial<ReportLoadRequest>) =>
  encode(
    ReportLoadRequest,
    ReportLoadRequest.fromPartial({ host: 'exec-1', cpuPercent: 10, memoryPercent: 10, ...r }),
  );
const upsert = (r: Partial<RateLimitRule>) =>
  encode(
    UpsertRateLimitRuleRequest,
    UpsertRateLimitRuleRequest.fromPartial({
      rule: RateLimitRule.fromPartial({
        name: 'r',
        scope: Scope.SCOPE_USER,
        match: '*',
        limit: 10,
        window: { seconds: 60, nanos: 0 },
        ...r,
      }),
    }),
  );

/** The call answers INVALID_ARGUMENT naming `field`, and nothing was written. */
const expectRefused = (path: string, body: Buffer, field: string): Promise<RawAnswer> =>
  refused(raw, counts, path, body, field);

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
  const rule = await raw.unary(`${A}UpsertRateLimitRule`, upsert({ name: 'users', limit: 1000 }));
  expect(rule.code).toBe(status.OK);
  // The start's own sample reaches load_history on the next flush: wait it out.
  await settledCounts(counts);
});

afterAll(async () => {
  raw?.close();
  await server?.stop();
  await db?.drop();
});

describe('text the database cannot hold', () => {
  it.each([
    ['user_id', { userId: 'a\u0000b' }],
    ['api_key', { apiKey: 'key\u0000' }],
    ['request_id', { userId: 'alice', requestId: 'r\u00001' }],
    ['ip', { ip: '\u000010.0.0.1' }],
    ['path', { userId: 'alice', path: '/x\u0000' }],
    ['user_agent', { userId: 'alice', userAgent: 'curl\u0000' }],
    ['host', { userId: 'alice', host: 'h\u0000' }],
  ])(
    'CheckLimit with a NUL in %s: INVALID_ARGUMENT naming it, nothing counted',
    async (field, r) => {
      await expectRefused(`${Q}CheckLimit`, checkLimit(r), field);
    },
  );

  it('ReportLoad, the rule writes and the load queries with a NUL: INVALID_ARGUMENT naming the field', async () => {
    await expectRefused(`${Q}ReportLoad`, reportLoad({ host: 'exec\u0000' }), 'host');
    await expectRefused(`${A}UpsertRateLimitRule`, upsert({ match: 'a\u0000' }), 'rule.match');
    await expectRefused(
      `${A}UpsertRateLimitRule`,
      upsert({ description: 'about\u0000' }),
      'rule.description',
    );
    await expectRefused(`${A}UpsertRateLimitRule`, upsert({ name: 'r\u0000' }), 'rule.name');
    await expectRefused(
      `${A}SetRateLimitRuleEnabled`,
      encode(SetRateLimitRuleEnabledRequest, { name: 'users\u0000', enabled: false }),
      'name',
    );
    await expectRefused(
      `${A}DeleteRateLimitRule`,
      encode(DeleteRateLimitRuleRequest, { name: 'users\u0000' }),
      'name',
    );
    await expectRefused(
      `${A}GetResourceHealth`,
      encode(GetResourceHealthRequest, { hosts: ['a', 'b\u0000'] }),
      'hosts[1]',
    );
    await expectRefused(
      `${A}GetLoadTrend`,
      encode(GetLoadTrendRequest, { minutes: 5, hosts: ['\u0000'] }),
      'hosts[0]',
    );
    await expectRefused(
      `${A}GetHourlySummary`,
      encode(GetHourlySummaryRequest, { hours: 1, hosts: ['\u0000'] }),
      'hosts[0]',
    );
    await expectRefused(
      `${A}ListThrottleEvents`,
      encode(ListThrottleEventsRequest, { host: 'h\u0000', limit: 10 }),
      'host',
    );
    const stream = await raw.firstOfStream(
      `${Q}WatchLoad`,
      encode(WatchLoadRequest, { interval: undefined, hosts: ['h\u0000'] }),
    );
    expect([stream.code, stream.field]).toEqual([status.INVALID_ARGUMENT, 'hosts[0]']);
  });

  it('refuses invalid UTF-8 on the wire naming the field, rather than storing U+FFFD', async () => {
    const body = Buffer.from(
      new BinaryWriter()
        .uint32((2 << 3) | 2)
        .bytes(Uint8Array.from([0x61, 0xff, 0x62]))
        .finish(),
    );
    const answer = await expectRefused(`${Q}CheckLimit`, body, 'user_id');
    expect(answer.details).toBe('user_id: is not valid UTF-8');
    const host = Buffer.concat([
      reportLoad({ host: '' }),
      Buffer.from(
        new BinaryWriter()
          .uint32((1 << 3) | 2)
          .bytes(Uint8Array.from([0xc0, 0x80]))
          .finish(),
      ),
    ]);
    await expectRefused(`${Q}ReportLoad`, host, 'host');
  });
});

describe('bodies that do not decode', () => {
  it('answers a truncated body INVALID_ARGUMENT naming the field it was cut in', async () => {
    const full = checkLimit({ ip: '10.0.0.1', userId: 'alice' });
    await expectRefused(`${Q}CheckLimit`, full.subarray(0, full.length - 2), 'user_id');
    await expectRefused(`${A}UpsertRateLimitRule`, upsert({}).subarray(0, 4), 'rule.name');
  });

  it('answers garbage INVALID_ARGUMENT, on every kind of method', async () => {
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    for (const method of ['CheckLimit', 'ReportLoad', 'CheckCommandQuota'])
      await expectRefused(`${Q}${method}`, garbage, 'request');
    await expectRefused(`${A}GetThrottleThresholds`, garbage, 'request');
    const stream = await raw.firstOfStream(`${Q}WatchLoad`, garbage);
    expect([stream.code, stream.field]).toEqual([status.INVALID_ARGUMENT, 'request']);
  });

  it('answers an int64 past 2^53 INVALID_ARGUMENT naming rule.limit or rule.window.seconds', async () => {
    const rule = (limit: string, seconds: string) => {
      const w = new BinaryWriter().uint32((1 << 3) | 2).fork();
      w.uint32((1 << 3) | 2).string('big');
      w.uint32((2 << 3) | 0).int32(Scope.SCOPE_USER);
      w.uint32((4 << 3) | 0).int64(limit);
      w.uint32((5 << 3) | 2)
        .fork()
        .uint32((1 << 3) | 0)
        .int64(seconds)
        .join();
      return Buffer.from(w.join().finish());
    };
    await expectRefused(`${A}UpsertRateLimitRule`, rule('9007199254740993', '60'), 'rule.limit');
    await expectRefused(
      `${A}UpsertRateLimitRule`,
      rule('10', '9223372036854775807'),
      'rule.window.seconds',
    );
  });

  it.each(['9223372036854775807', '-9223372036854775808'])(
    'ends WatchLoad with interval.seconds = %s INVALID_ARGUMENT naming it',
    async (seconds) => {
      const body = Buffer.from(
        new BinaryWriter()
          .uint32((1 << 3) | 2)
          .fork()
          .uint32((1 << 3) | 0)
          .int64(seconds)
          .join()
          .finish(),
      );
      const answer = await raw.firstOfStream(`${Q}WatchLoad`, body);
      expect([answer.code, answer.field]).toEqual([status.INVALID_ARGUMENT, 'interval.seconds']);
    },
  );

  it('authenticates before decoding: a malformed body is answered as a good one would be', async () => {
    const anonymous = new RawClient(server.address);
    try {
      const good = await anonymous.unary(`${Q}CheckLimit`, checkLimit({ userId: 'alice' }));
      const bad = await anonymous.unary(`${Q}CheckLimit`, Buffer.from([0xff]));
      const stream = await anonymous.firstOfStream(`${Q}WatchLoad`, Buffer.from([0xff]));
      if (good.code === status.OK) {
        // Authentication is off: the body is what is wrong.
        expect([bad.code, stream.code]).toEqual([status.INVALID_ARGUMENT, status.INVALID_ARGUMENT]);
      } else {
        // Without a token no decoding detail is given, only what authentication answers.
        expect(good.code).toBe(status.UNAUTHENTICATED);
        expect([bad.code, bad.field, stream.code]).toEqual([good.code, undefined, good.code]);
      }
    } finally {
      anonymous.close();
    }
  });
});

describe('figures PostgreSQL cannot aggregate', () => {
  it.each([
    ['cpu_percent', { cpuPercent: 5e-324 }],
    ['memory_percent', { memoryPercent: NaN }],
    ['disk_percent', { diskPercent: -Infinity }],
    ['net_rx_bytes_per_sec', { netRxBytesPerSec: 1e-310 }],
    ['load_avg_1m', { loadAvg1m: Infinity }],
  ])('ReportLoad refuses a subnormal or non-finite %s', async (field, r) => {
    await expectRefused(`${Q}ReportLoad`, reportLoad(r), field);
  });

  it('SetThrottleThresholds refuses a subnormal threshold naming it', async () => {
    await expectRefused(
      `${A}SetThrottleThresholds`,
      encode(SetThrottleThresholdsRequest, {
        thresholds: { slight: 5e-324, moderate: 80, heavy: 90, critical: 95 },
      }),
      'thresholds.slight',
    );
  });

  it('answers GetLoadTrend and GetHourlySummary over subnormal rows already stored', async () => {
    // Rows as a version that stored 5e-324 left them: a mean over them rounds to zero.
    await db.query(
      `INSERT INTO load_history (host, at, samples, cpu_percent, cpu_max, memory_percent,
         memory_max, disk_percent, disk_max, load_avg_1m, load_avg_1m_max, throttle_factor)
       SELECT 'legacy', clock_timestamp() - make_interval(secs => s), n, v, v, v, v, v, v, v, v, 1
         FROM (VALUES (1, 1, 5e-324::float8), (2, 3, 0::float8), (3, 1, -5e-324::float8),
                      (4, 2, 1e-310::float8)) t(s, n, v)`,
    );
    const trend = await raw.unary(
      `${A}GetLoadTrend`,
      encode(GetLoadTrendRequest, { minutes: 5, hosts: ['legacy'] }),
    );
    expect(trend.code, trend.details).toBe(status.OK);
    const trends = GetLoadTrendResponse.decode(trend.body!).trends;
    expect(trends.map((t) => [t.metric, t.average, t.samples])).toEqual([
      ['cpu_percent', 0, 7],
      ['disk_percent', 0, 7],
      ['load_avg_1m', 0, 7],
      ['memory_percent', 0, 7],
    ]);
    const hourly = await raw.unary(
      `${A}GetHourlySummary`,
      encode(GetHourlySummaryRequest, { hours: 2, hosts: [] }),
    );
    expect(hourly.code, hourly.details).toBe(status.OK);
    const legacy = GetHourlySummaryResponse.decode(hourly.body!).hours.filter(
      (h) => h.host === 'legacy',
    );
    expect(legacy.reduce((n, h) => n + h.samples, 0)).toBe(7);
    expect(legacy.every((h) => h.cpuAvg === 0 && h.loadAvg1mAvg === 0)).toBe(true);
  });
});
