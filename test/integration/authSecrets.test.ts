import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import * as grpc from '@grpc/grpc-js';
import { adminV1, connect, QuotaCallError } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { startApp } from '../../src/app/startApp.js';
import { loadConfig } from '../../src/config.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';

/**
 * Tokens never reach the log or the database: a server logging at debug into a buffer is called
 * with good, wrong, malformed and revoked tokens, and both the log and every row of every table
 * are searched for each token.
 */

let db: TestDatabase;

const ADMIN = `qa_secrets-admin-${'s'.repeat(40)}`;
const WRONG = `qa_wrong-${'w'.repeat(40)}`;

function capturedLogger(): { logger: pino.Logger; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), text: () => chunks.join('') };
}

async function start(env: Record<string, string>, logger: pino.Logger) {
  const config = loadConfig({
    DATABASE_URL: db.url,
    QUOTA_HOST: '127.0.0.1',
    QUOTA_PORT: '0',
    QUOTA_METRICS_PORT: '0',
    LOG_LEVEL: 'debug',
    // What reaches the log is the claim, not latency: no call may time out on a busy box.
    QUOTA_DB_TIMEOUT_MS: '5000',
    ...env,
  });
  return startApp(config, logger);
}

/** Every row of every table of the database as text, one line per row. */
async function everyRow(): Promise<string> {
  const tables = await db.query<{ t: string }>(
    `SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public'`,
  );
  expect(tables.rows.map((r) => r.t)).toContain('access_tokens');
  const out: string[] = [];
  for (const { t } of tables.rows) {
    const rows = await db.query<{ r: string }>(`SELECT x::text AS r FROM ${t} x`);
    out.push(...rows.rows.map((r) => r.r));
  }
  return out.join('\n');
}

const code = (call: Promise<unknown>) =>
  call.then(
    () => 0,
    (err: unknown) => (err instanceof QuotaCallError ? err.code : -1),
  );

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

describe('no token in the log or the database', () => {
  it('after calls with good, wrong, malformed and revoked tokens', async () => {
    const { logger, text } = capturedLogger();
    const app = await start({ QUOTA_ADMIN_TOKEN: ADMIN }, logger);
    const address = `127.0.0.1:${app.port}`;
    const admin = connect({ address: address, token: ADMIN });
    const made: string[] = [];
    try {
      for (const role of [adminV1.Role.ROLE_CLIENT, adminV1.Role.ROLE_VIEWER]) {
        made.push((await admin.admin.createToken({ name: `t-${role}`, role })).token);
      }
      const [clientToken, viewerToken] = made as [string, string];
      const check = CheckLimitRequest.fromPartial({ userId: 'u', apiKey: 'k' });
      const asClient = connect({ address: address, token: clientToken });
      const asViewer = connect({ address: address, token: viewerToken });
      const asWrong = connect({ address: address, token: WRONG });
      try {
        expect(await code(asClient.quota.checkLimit(check))).toBe(0);
        expect(await code(asClient.admin.listTokens({}))).toBe(grpc.status.PERMISSION_DENIED);
        expect(await code(asViewer.admin.deleteRateLimitRule({ name: 'x' }))).toBe(
          grpc.status.PERMISSION_DENIED,
        );
        expect(await code(asWrong.quota.checkLimit(check))).toBe(grpc.status.UNAUTHENTICATED);
        const malformed = new grpc.Metadata();
        malformed.set('authorization', `Token ${clientToken} ${WRONG}`);
        expect(await code(asWrong.quota.checkLimit(check, { metadata: malformed }))).toBe(
          grpc.status.UNAUTHENTICATED,
        );
        const id = (await admin.admin.listTokens({})).tokens.find(
          (t) => t.name === `t-${adminV1.Role.ROLE_CLIENT}`,
        )!.id;
        await admin.admin.revokeToken({ id });
        expect(await code(asClient.quota.checkLimit(check))).toBe(grpc.status.UNAUTHENTICATED);
      } finally {
        asClient.close();
        asViewer.close();
        asWrong.close();
      }
    } finally {
      admin.close();
      // Stopping writes the last batch of last uses.
      await app.stop(1000);
    }

    const log = text();
    // The log was captured, refusals included.
    expect(log).toContain('"status":"UNAUTHENTICATED"');
    expect(log).toContain('"status":"PERMISSION_DENIED"');
    const rows = await everyRow();
    for (const token of [ADMIN, WRONG, ...made]) {
      expect(log).not.toContain(token);
      // Nor the part after the prefix, in case a line cut or reworded it.
      expect(log).not.toContain(token.slice(3, 30));
      expect(rows).not.toContain(token);
      expect(rows).not.toContain(token.slice(3, 30));
    }
    const used = await db.query<{ name: string }>(
      `SELECT name FROM access_tokens WHERE last_used_at IS NOT NULL ORDER BY name`,
    );
    expect(used.rows.map((r) => r.name)).toEqual(['QUOTA_ADMIN_TOKEN', 't-1', 't-2']);
  });

  it('an invalid QUOTA_ADMIN_TOKEN is named in the error without its value', () => {
    const short = 'qa_short-secret';
    let message = '';
    try {
      loadConfig({ QUOTA_ADMIN_TOKEN: short });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('QUOTA_ADMIN_TOKEN');
    expect(message).not.toContain(short);
  });
});

describe('QUOTA_AUTH=disabled', () => {
  it('admits calls with no token and warns at start', async () => {
    const { logger, text } = capturedLogger();
    const app = await start({ QUOTA_AUTH: 'disabled' }, logger);
    const anyone = connect({ address: `127.0.0.1:${app.port}` });
    try {
      expect(await code(anyone.admin.listTokens({}))).toBe(0);
      expect(
        await code(anyone.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'u' }))),
      ).toBe(0);
    } finally {
      anyone.close();
      await app.stop(1000);
    }
    const warning = text()
      .split('\n')
      .filter((l) => l.includes('authentication is OFF'))
      .map((l) => JSON.parse(l) as { level: number });
    expect(warning).toHaveLength(1);
    expect(warning[0]!.level).toBe(40);
  });
});
