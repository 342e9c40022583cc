import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GetStatsRequest,
  GetStatsResponse,
  GetViolationsRequest,
  GetViolationsResponse,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { badUtf8 } from '../support/badUtf8.js';
import { expectRefused as refused } from '../support/expectRefused.js';
import { RawClient } from '../support/rawClient.js';
import { rowCounter, type RowCounts } from '../support/rowCounts.js';
import { flushBuffers } from '../support/flushBuffers.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

// Bad input to GetViolations and GetStats: INVALID_ARGUMENT naming the field, nothing written.

const A = '/quota.v1.AdminService/';
const VIOLATIONS = `${A}GetViolations`;
const STATS = `${A}GetStats`;
const DAY = 86_400_000;

let db: TestDatabase;
let server: TestServer;
let raw: RawClient;
let counts: () => Promise<RowCounts>;

const now = new Date('2026-03-01T12:00:00Z');
const violations = (r: Partial<GetViolationsRequest>) =>
  Buffer.from(
    GetViolationsRequest.encode(
      GetViolationsRequest.fromPartial({ since: new Date(now.getTime() - DAY), until: now, ...r }),
    ).finish(),
  );
const stats = (r: Partial<GetStatsRequest>) =>
  Buffer.from(
    GetStatsRequest.encode(
      GetStatsRequest.fromPartial({ since: new Date(now.getTime() - DAY), until: now, ...r }),
    ).finish(),
  );
/** A body whose Timestamp field `field` holds `seconds` (past what a Date can hold, even). */
const withSeconds = (field: number, seconds: string) =>
  Buffer.from(
    new BinaryWriter()
      .uint32((field << 3) | 2)
      .fork()
      .uint32((1 << 3) | 0)
      .int64(seconds)
      .join()
      .finish(),
  );

/** Row counts of every table and the audit tables' content. */
async function written() {
  const content = await db.query<{ digest: string }>(
    `SELECT md5(concat_ws('|',
       (SELECT string_agg(v::text, ',' ORDER BY v.id) FROM violations v),
       (SELECT string_agg(s::text, ',' ORDER BY s::text) FROM decision_stats s),
       (SELECT string_agg(f::text, ',' ORDER BY f::text) FROM attack_flags f),
       (SELECT string_agg(i::text, ',' ORDER BY i::text) FROM identity_sightings i))) AS digest`,
  );
  return { rows: await counts(), content: content.rows[0]!.digest };
}

const expectRefused = (path: string, body: Buffer, field: string) =>
  refused(raw, written, path, body, field);

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, { QUOTA_LOAD_INTERVAL_MS: '600000' });
  raw = new RawClient(server.address, TEST_ADMIN_TOKEN);
  counts = await rowCounter(db, () => flushBuffers(server.client));
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('GetViolations', () => {
  it.each<[string, Buffer]>([
    ['since', violations({ since: now })],
    ['since', violations({ since: new Date(now.getTime() + 1) })],
    ['since', violations({ since: new Date(now.getTime() - 367 * DAY) })],
    ['until', Buffer.concat([violations({ until: undefined }), withSeconds(2, '1000000000000')])],
    ['until', Buffer.concat([violations({ until: undefined }), withSeconds(2, '100000000000000')])],
    ['since', Buffer.concat([violations({ since: undefined }), withSeconds(1, '-100000000000')])],
    ['rule', violations({ rule: 'a\u0000' })],
    ['rule', violations({ rule: 'r'.repeat(257) })],
    ['rule', Buffer.concat([violations({}), badUtf8(3)])],
    ['user_id', violations({ userId: '\u0000' })],
    ['user_id', Buffer.concat([violations({}), badUtf8(4)])],
    ['ip', violations({ ip: 'not-an-ip' })],
    ['ip', violations({ ip: '2001:db8::/48' })],
    ['ip', violations({ ip: '192.0.2.1/32' })],
    ['ip', violations({ ip: '192.0.2.1\u0000' })],
    ['limit', violations({ limit: 1001 })],
  ])('refuses a bad %s (case %#)', async (field, body) => {
    await expectRefused(VIOLATIONS, body, field);
  });

  it('takes an unset range as the last 24 hours, limit 0 as 100 and an IPv6 network as its key', async () => {
    const answer = await raw.unary(
      VIOLATIONS,
      violations({ since: undefined, until: undefined, ip: '2001:db8::1/64', limit: 0 }),
    );
    expect(answer.code, answer.details).toBe(status.OK);
    expect(GetViolationsResponse.decode(answer.body!)).toMatchObject({ total: 0, recent: [] });
    const v6 = await raw.unary(VIOLATIONS, violations({ ip: '2001:db8:0:0::/64', limit: 1000 }));
    expect(v6.code, v6.details).toBe(status.OK);
  });
});

describe('GetStats', () => {
  it.each<[string, Buffer]>([
    ['since', stats({ since: now })],
    ['since', stats({ since: new Date(now.getTime() - 400 * DAY) })],
    ['until', Buffer.concat([stats({ until: undefined }), withSeconds(2, '1000000000000')])],
    ['name', stats({ name: 'x\u0000' })],
    ['name', stats({ name: 'n'.repeat(257) })],
    ['name', Buffer.concat([stats({}), badUtf8(3)])],
  ])('refuses a bad %s (case %#)', async (field, body) => {
    await expectRefused(STATS, body, field);
  });

  it('takes an unset range as the last 24 hours', async () => {
    const answer = await raw.unary(STATS, stats({ since: undefined, until: undefined }));
    expect(answer.code, answer.details).toBe(status.OK);
    expect(GetStatsResponse.decode(answer.body!)).toEqual({ hours: [], totals: [] });
  });
});
