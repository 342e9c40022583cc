import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitRule, Scope } from '@quota-authority/client';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules/.bin/tsc');

/**
 * npm as a user runs it: without the npm_* variables `npm test` sets for its scripts (a
 * workspace or a prefix among them would point the install elsewhere).
 */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')),
  );
}

// A consumer that knows nothing of this repository: it imports the installed package by name.
const ESM_CONSUMER = `
import { connect, CheckLimitRequest, QuotaInvalidArgumentError, QuotaUnauthenticatedError } from '@quota-authority/client';
const conn = connect({ address: process.env.QUOTA_ADDRESS, token: process.env.QUOTA_TOKEN, deadlineMs: 5000 });
const answers = [];
// A plain object with only some fields is a request too: the rest take their defaults.
answers.push(await conn.quota.checkLimit({ userId: 'pack-user', requestId: 'r0' }));
for (let i = 1; i < 3; i++)
  answers.push(await conn.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'pack-user', requestId: 'r' + i })));
let field;
try {
  await conn.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'a\\u0000b' }));
} catch (err) {
  field = err instanceof QuotaInvalidArgumentError ? err.field : String(err);
}
const anonymous = connect({ address: process.env.QUOTA_ADDRESS });
const unauthenticated = await anonymous.quota
  .checkLimit(CheckLimitRequest.fromPartial({ userId: 'x' }))
  .then(() => false, (err) => err instanceof QuotaUnauthenticatedError);
anonymous.close();
conn.close();
console.log(JSON.stringify({ allowed: answers.map((a) => a.allowed), remaining: answers.map((a) => a.limits[0]?.remaining), field, unauthenticated }));
`;

const CJS_CONSUMER = `
const { connect, CheckLimitRequest } = require('@quota-authority/client');
const conn = connect({ address: process.env.QUOTA_ADDRESS, token: process.env.QUOTA_TOKEN });
conn.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'cjs-user' })).then((a) => {
  console.log(JSON.stringify({ allowed: a.allowed, rule: a.limits[0]?.rule }));
  conn.close();
});
`;

// The declarations: strict TypeScript consumers, an ES module and a CommonJS one, type-check
// against them.
const TS_CONSUMER = `
import { connect, type CheckLimitResponse, type QuotaConnection } from '@quota-authority/client';
const conn: QuotaConnection = connect({ address: '127.0.0.1:1', deadlineMs: 100, retry: { maxAttempts: 2 } });
const answer: Promise<CheckLimitResponse> = conn.quota.checkLimit({ userId: 'u', hits: 1 });
void answer;
// @ts-expect-error: address is required
connect({ token: 't' });
// @ts-expect-error: a field the request does not have
void conn.quota.checkLimit({ userName: 'u' });
`;
const CTS_CONSUMER = `
import { connect, QuotaInvalidArgumentError } from '@quota-authority/client';
const conn = connect({ address: '127.0.0.1:1' });
conn.quota.getQuotaStatus({ userId: 'u' }).catch((err: unknown) => {
  const field: string | undefined = err instanceof QuotaInvalidArgumentError ? err.field : undefined;
  return field;
});
`;

let db: TestDatabase;
let server: TestServer;
let work: string;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url);
  await server.client.admin.upsertRateLimitRule({
    rule: RateLimitRule.fromPartial({
      name: 'pack-users',
      scope: Scope.SCOPE_USER,
      match: '*',
      limit: 2,
      window: { seconds: 3600, nanos: 0 },
    }),
  });
  work = await mkdtemp(join(tmpdir(), 'quota-client-pack-'));
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the packed client package', () => {
  it('installs into an empty folder, calls a running server from .mjs and .cjs, and types .mts and .cts consumers', async () => {
    const packed = join(work, 'packed');
    const app = join(work, 'app');
    await run('mkdir', ['-p', packed, app]);
    const { stdout } = await run(
      'npm',
      // --ignore-scripts: what is packed is the dist/ every other test uses (npm test builds it
      // first), not a second build of it.
      [
        'pack',
        '--workspace',
        '@quota-authority/client',
        '--pack-destination',
        packed,
        '--json',
        '--ignore-scripts',
      ],
      { cwd: ROOT, env: npmEnv(), maxBuffer: 16 << 20 },
    );
    const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    const files = info.files.map((f) => f.path);
    // Built code and declarations only: no TypeScript sources, tests or build configuration.
    expect(files).toContain('dist/esm/index.js');
    expect(files).toContain('dist/esm/index.d.ts');
    expect(files).toContain('dist/cjs/index.js');
    expect(files.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test'))).toBe(false);
    expect(await readdir(packed)).toEqual([info.filename]);

    // The folder holds nothing but what npm install puts there.
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', join(packed, info.filename)],
      { cwd: app, env: npmEnv(), maxBuffer: 16 << 20 },
    );
    await writeFile(join(app, 'consumer.mjs'), ESM_CONSUMER);
    await writeFile(join(app, 'consumer.cjs'), CJS_CONSUMER);
    await writeFile(join(app, 'consumer.mts'), TS_CONSUMER);
    await writeFile(join(app, 'consumer.cts'), CTS_CONSUMER);
    const env = { ...npmEnv(), QUOTA_ADDRESS: server.address, QUOTA_TOKEN: TEST_ADMIN_TOKEN };

    const esm = await run('node', ['consumer.mjs'], { cwd: app, env });
    expect(JSON.parse(esm.stdout)).toEqual({
      allowed: [true, true, false],
      remaining: [1, 0, 0],
      field: 'user_id',
      unauthenticated: true,
    });
    const cjs = await run('node', ['consumer.cjs'], { cwd: app, env });
    expect(JSON.parse(cjs.stdout)).toEqual({ allowed: true, rule: 'pack-users' });

    // Only the consumers' own files are checked (skipLibCheck): the package's types must
    // resolve, for import (.mts) and for require (.cts), under node16 and nodenext.
    for (const resolution of ['node16', 'nodenext'])
      await run(
        TSC,
        [
          '--noEmit',
          '--strict',
          '--skipLibCheck',
          '--module',
          resolution,
          '--moduleResolution',
          resolution,
          '--target',
          'es2022',
          '--types',
          'node',
          '--typeRoots',
          join(ROOT, 'node_modules/@types'),
          'consumer.mts',
          'consumer.cts',
        ],
        { cwd: app, env },
      ).catch((err: { stdout?: string }) => {
        throw new Error(`tsc (${resolution}) refused a consumer:\n${err.stdout ?? String(err)}`);
      });
  }, 180_000);
});
