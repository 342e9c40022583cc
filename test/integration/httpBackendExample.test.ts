import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

const run = promisify(execFile);
const EXAMPLE = fileURLToPath(
  new URL('../../clients/typescript/examples/http-backend.mjs', import.meta.url),
);

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url);
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('clients/typescript/examples/http-backend.mjs', () => {
  it('creates its rule, serves, and in --self-test mode shows a 429 and exits 0', async () => {
    // The way the README runs it, with the server's address and admin token from the env.
    const { stdout } = await run(process.execPath, [EXAMPLE, '--self-test'], {
      env: {
        ...process.env,
        QUOTA_ADDRESS: server.address,
        QUOTA_TOKEN: TEST_ADMIN_TOKEN,
        PORT: '0',
      },
      timeout: 20_000,
    });
    expect(stdout).toContain('Rule http-backend-example: 5 requests per 10 s per client IP.');
    expect(stdout).toMatch(/curl -i http:\/\/127\.0\.0\.1:\d+\/hello/);
    const statuses = [...stdout.matchAll(/^#\d+ (\d{3})$/gm)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(stdout).toContain('RateLimit-Policy: "http-backend-example";q=5;w=10');
    expect(stdout).toMatch(/RateLimit: "http-backend-example";r=4;t=\d+/);
    expect(stdout).toMatch(/Retry-After: [1-9]\d*/);
    expect(stdout).toContain('self-test: ok');
  });
});
