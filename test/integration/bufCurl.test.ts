import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { AdminServiceService } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { QuotaServiceService } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';
import { reflectionClient, type ReflectionResponse } from '../support/reflectionClient.js';

/**
 * A strict reflection client end to end: the real `buf curl`, given no proto files, learns the
 * whole schema through server reflection and calls the service with it. It fails unless every
 * file the server names lists its dependencies and each of them is served by its file name.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const BUF = path.join(root, 'node_modules', '.bin', 'buf');
const BASE = ['curl', '--protocol', 'grpc', '--http2-prior-knowledge'];
/** What QuotaService and AdminService calls carry; reflection and health need no token. */
const AUTH = ['-H', `Authorization: Bearer ${TEST_ADMIN_TOKEN}`];

let db: TestDatabase;
let server: TestServer;
let url: string;

/** Every buf process this file started and that has not exited yet. */
const running = new Set<ChildProcess>();

/**
 * Ends a buf process and the native binary its launcher (node_modules/.bin/buf is a Node
 * script that runs the platform binary) started: both are in the process group of `child`.
 */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const signal = (s: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, s);
    } catch {
      // Already gone.
    }
  };
  signal('SIGTERM');
  const hard = setTimeout(() => signal('SIGKILL'), 2000);
  await exited;
  clearTimeout(hard);
}

function startBuf(args: string[]): ChildProcess {
  // Own process group, so that kill() reaches the launcher's child too. No shell: each
  // argument reaches buf as it is written here.
  const child = spawn(BUF, [...BASE, ...args], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('close', () => running.delete(child));
  return child;
}

interface BufResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs buf to its end (killed after `timeoutMs`). */
function runBuf(args: string[], timeoutMs = 20_000): Promise<BufResult> {
  const child = startBuf(args);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => void kill(child), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Parses buf's output: a run of pretty-printed JSON objects, one per response message. */
function jsonObjects(text: string): { objects: Record<string, unknown>[]; rest: string } {
  const objects: Record<string, unknown>[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = -1;
  let consumed = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) {
        objects.push(JSON.parse(text.slice(start, i + 1)) as Record<string, unknown>);
        consumed = i + 1;
      }
    }
  }
  return { objects, rest: text.slice(consumed) };
}

async function curlJson(method: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await runBuf([...AUTH, '-d', JSON.stringify(body), `${url}/${method}`]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const { objects } = jsonObjects(r.stdout);
  expect(objects).toHaveLength(1);
  return objects[0]!;
}

function files(res: ReflectionResponse): FileDescriptorProto[] {
  expect(res.errorResponse).toBeUndefined();
  return res.fileDescriptorResponse!.fileDescriptorProto.map((b) =>
    fromBinary(FileDescriptorProtoSchema, b),
  );
}

/** Method names as `buf curl --list-methods` prints them, from a generated service definition. */
function methodsOf(service: Record<string, { path: string }>): string[] {
  return Object.values(service).map((m) => m.path.slice(1));
}

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url);
  url = `http://${server.address}`;
});

afterEach(async () => {
  await Promise.all([...running].map(kill));
});

afterAll(async () => {
  await Promise.all([...running].map(kill));
  await server?.stop();
  await db?.drop();
});

describe('buf curl through server reflection alone', () => {
  it.each(['grpc-v1', 'grpc-v1alpha'] as const)(
    'lists every method of every service (%s)',
    async (protocol) => {
      const r = await runBuf(['--reflect-protocol', protocol, '--list-methods', url]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const listed = r.stdout.split('\n').filter((l) => l !== '');
      const expected = [
        ...methodsOf(QuotaServiceService),
        ...methodsOf(AdminServiceService),
        'grpc.health.v1.Health/Check',
        'grpc.health.v1.Health/Watch',
        'grpc.health.v1.Health/List',
      ];
      expect(listed).toEqual(expect.arrayContaining(expected));
      expect(methodsOf(QuotaServiceService)).toContain('quota.v1.QuotaService/WatchLoad');
    },
  );

  it('upserts a rule and checks a limit with JSON bodies (Duration fields included)', async () => {
    const upsert = await curlJson('quota.v1.AdminService/UpsertRateLimitRule', {
      rule: { name: 'user-5', scope: 'SCOPE_USER', match: '*', limit: 5, window: '60s' },
    });
    expect(upsert).toMatchObject({
      rule: { name: 'user-5', scope: 'SCOPE_USER', match: '*', limit: '5', window: '60s' },
    });

    const answer = await curlJson('quota.v1.QuotaService/CheckLimit', { userId: 'alice' });
    expect(answer['allowed']).toBe(true);
    const limits = answer['limits'] as Record<string, unknown>[];
    const mine = limits.find((l) => l['rule'] === 'user-5');
    // int64 as a JSON string, Duration as "<seconds>s": decoded with the schema from reflection.
    expect(mine).toMatchObject({
      scope: 'SCOPE_USER',
      key: 'alice',
      limit: '5',
      remaining: '4',
      window: '60s',
    });
    expect(mine!['resetAfter']).toMatch(/^\d+(\.\d+)?s$/);
  });

  it("runs the executor's flow as the README shows it: rule, load, check, record, status", async () => {
    await curlJson('quota.v1.AdminService/UpsertCommandQuotaRule', {
      rule: { userId: 'bob', commandType: 'shell', daily: 3, weekly: 10, monthly: 30 },
    });
    const load = await curlJson('quota.v1.QuotaService/ReportLoad', {
      host: 'exec-7',
      cpuPercent: 85,
      memoryPercent: 41.2,
      diskPercent: 37,
    });
    expect(load).toEqual({ throttleFactor: 0.6 });
    const check = await curlJson('quota.v1.QuotaService/CheckCommandQuota', {
      userId: 'bob',
      commandType: 'shell',
      host: 'exec-7',
      requestId: 'job-42',
    });
    expect(check).toMatchObject({ allowed: true, tier: 'default', delay: '0.400s' });
    expect(check['periods']).toEqual([
      expect.objectContaining({ period: 'PERIOD_DAILY', limit: '3', used: '1', remaining: '2' }),
      expect.objectContaining({ period: 'PERIOD_WEEKLY', limit: '10', used: '1' }),
      expect.objectContaining({ period: 'PERIOD_MONTHLY', limit: '30', used: '1' }),
    ]);
    const recorded = await curlJson('quota.v1.QuotaService/RecordExecution', {
      reservationId: check['reservationId'],
      requestId: 'job-42-done',
      userId: 'bob',
      commandType: 'shell',
      host: 'exec-7',
      duration: '2.300s',
      cpuPercent: 12.5,
      memoryBytes: '52428800',
      exitCode: 0,
      status: 'completed',
    });
    expect(recorded['executionId']).toMatch(/^[0-9a-f-]{36}$/);
    const status = await curlJson('quota.v1.QuotaService/GetQuotaStatus', { userId: 'bob' });
    const shell = (status['commands'] as Record<string, unknown>[]).find(
      (c) => c['commandType'] === 'shell',
    );
    expect(shell!['recent']).toMatchObject({
      count: '1',
      averageDuration: '2.300s',
      p95Duration: '2.300s',
      averageCpuPercent: 12.5,
      maxMemoryBytes: '52428800',
    });
    const tier = await curlJson('quota.v1.AdminService/SetUserTier', {
      userId: 'bob',
      tier: 'premium',
    });
    expect(tier).toEqual({ userId: 'bob', tier: 'premium' });
  });

  it("runs the operators' guide as the README shows it: violations, statistics, the dashboard, tasks", async () => {
    await curlJson('quota.v1.AdminService/UpsertRateLimitRule', {
      rule: { name: 'ops-2', scope: 'SCOPE_USER', match: 'mallory', limit: 2, window: '60s' },
    });
    const answers = [];
    for (let i = 0; i < 5; i++) {
      answers.push(
        await curlJson('quota.v1.QuotaService/CheckLimit', {
          userId: 'mallory',
          ip: '203.0.113.9',
          path: '/v1/orders?token=abc',
        }),
      );
    }
    // proto3 JSON leaves false out: three answers without "allowed".
    expect(answers.map((a) => a['allowed'] === true)).toEqual([true, true, false, false, false]);
    for (const name of ['violations-flush', 'stats-flush']) {
      const run = await curlJson('quota.v1.AdminService/RunTask', { name });
      expect(run).toMatchObject({ ran: true, task: { name } });
    }

    const violations = await curlJson('quota.v1.AdminService/GetViolations', {
      userId: 'mallory',
      limit: 2,
    });
    expect(violations).toMatchObject({
      total: '3',
      byRule: [{ rule: 'ops-2', count: '3' }],
      topKeys: [{ scope: 'user', key: 'mallory', count: '3' }],
    });
    const recent = violations['recent'] as Record<string, unknown>[];
    expect(recent[0]).toMatchObject({
      ip: '203.0.113.9',
      path: '/v1/orders',
      source: 'check_limit',
    });

    const stats = await curlJson('quota.v1.AdminService/GetStats', { name: 'ops-2' });
    expect(stats['totals']).toEqual([{ kind: 'rule', name: 'ops-2', allowed: '2', denied: '3' }]);

    const dashboard = await curlJson('quota.v1.AdminService/GetDashboard', { hours: 1 });
    expect(dashboard).toMatchObject({ databaseAvailable: true });
    expect(dashboard['topViolators']).toContainEqual({ scope: 'user', key: 'mallory', count: '3' });

    const tasks = await curlJson('quota.v1.AdminService/ListTasks', {});
    const names = (tasks['tasks'] as { name: string }[]).map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['retention-cleanup', 'attack-detection']));
    const cleanup = await curlJson('quota.v1.AdminService/CleanupOldData', {});
    expect((cleanup['deleted'] as { table: string }[]).map((d) => d.table)).toContain('violations');

    const bad = await runBuf([
      ...AUTH,
      '-d',
      '{"hours":721}',
      `${url}/quota.v1.AdminService/GetDashboard`,
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/invalid_argument[\s\S]*hours/);
  });

  it('is refused UNAUTHENTICATED without the authorization header, and health is not', async () => {
    const refused = await runBuf([
      '-d',
      '{"userId":"alice"}',
      `${url}/quota.v1.QuotaService/CheckLimit`,
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/unauthenticated/i);
    expect(refused.stderr).not.toContain(TEST_ADMIN_TOKEN);
    const health = await runBuf([`${url}/grpc.health.v1.Health/Check`]);
    expect(health.stderr).toBe('');
    expect(jsonObjects(health.stdout).objects).toEqual([{ status: 'SERVING' }]);
  });

  it('streams WatchLoad snapshots until it is stopped', async () => {
    // --emit-defaults: a figure of 0 (an idle CPU, a throttle factor of 0) is printed too.
    const child = startBuf([
      ...AUTH,
      '--emit-defaults',
      '-d',
      '{"interval":"1s"}',
      `${url}/quota.v1.QuotaService/WatchLoad`,
    ]);
    let stdout = '';
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const snapshots = await new Promise<Record<string, unknown>[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`fewer than 2 snapshots in 15 s: ${stdout} ${stderr}`)),
        15_000,
      );
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        const { objects } = jsonObjects(stdout);
        if (objects.length >= 2) {
          clearTimeout(timer);
          resolve(objects);
        }
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`buf curl ended (${code}) before 2 snapshots: ${stdout} ${stderr}`));
      });
    });
    // Still streaming, with nothing on stderr, when stopped: the server never ended it.
    expect(child.exitCode).toBeNull();
    expect(stderr).toBe('');
    await kill(child);
    for (const s of snapshots.slice(0, 2)) {
      expect(typeof s['host']).toBe('string');
      expect(s['at']).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(typeof s['cpuPercent']).toBe('number');
      expect(typeof s['memoryPercent']).toBe('number');
      expect(typeof s['throttleFactor']).toBe('number');
    }
  });
});

describe('reflection v1alpha (what grpcurl 1.8 speaks), file by file', () => {
  it('serves google/protobuf/duration.proto by its file name', async () => {
    const c = reflectionClient(server.address, 'v1alpha');
    try {
      const [first] = files(await c.ask({ fileByFilename: 'google/protobuf/duration.proto' }));
      expect(first!.name).toBe('google/protobuf/duration.proto');
      expect(first!.package).toBe('google.protobuf');
      expect(first!.messageType.map((m) => m.name)).toEqual(['Duration']);
    } finally {
      c.close();
    }
  });

  it.each(['v1', 'v1alpha'] as const)(
    'resolves each service by symbol, then every dependency by file name, as grpcurl describe does (%s)',
    async (version) => {
      const c = reflectionClient(server.address, version);
      try {
        const seen = new Map<string, FileDescriptorProto>();
        const fetch = async (name: string): Promise<void> => {
          if (seen.has(name)) return;
          const [file] = files(await c.ask({ fileByFilename: name }));
          expect(file!.name).toBe(name);
          seen.set(name, file!);
          for (const dep of file!.dependency) await fetch(dep);
        };
        for (const symbol of [
          'quota.v1.QuotaService',
          'quota.v1.AdminService',
          'grpc.health.v1.Health',
        ]) {
          const [file] = files(await c.ask({ fileContainingSymbol: symbol }));
          await fetch(file!.name);
        }
        expect(seen.get('quota/v1/quota_service.proto')!.dependency).toEqual(
          expect.arrayContaining(['google/protobuf/duration.proto', 'quota/v1/types.proto']),
        );
        expect([...seen.keys()].sort()).toEqual([
          'google/protobuf/duration.proto',
          'google/protobuf/timestamp.proto',
          'grpc/health/v1/health.proto',
          'quota/v1/admin_service.proto',
          'quota/v1/quota_service.proto',
          'quota/v1/types.proto',
        ]);
      } finally {
        c.close();
      }
    },
  );
});
