import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/freePort.js';
import { silentLogger } from '../../src/log.js';
import { projectRoot } from '../../src/projectRoot.js';
import { migrate } from '../../src/store/migrate.js';
import { env, execForm, last, readDockerfile } from '../support/dockerfile.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

// The image's HEALTHCHECK, run as the Dockerfile states it (in its WORKDIR, with its ENV and
// the replica's QUOTA_PORT) against real servers: no Docker engine runs here.
const runtime = readDockerfile().at(-1)!;
const command = execForm(last(runtime, 'HEALTHCHECK')!.rest.replace(/^CMD\s+/, ''));

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the HEALTHCHECK command against `port`, with `extraEnv` (the replica's TLS) and `args`. */
function runHealthcheck(port: number, extraEnv: Record<string, string> = {}, args: string[] = []) {
  const [program, ...rest] = command;
  // `node` of the image: the Node running these tests, whatever PATH holds.
  expect(program).toBe('node');
  return new Promise<Outcome>((resolve) =>
    execFile(
      process.execPath,
      [...rest, ...args],
      {
        cwd: projectRoot(),
        env: { PATH: process.env['PATH'], ...env(runtime), QUOTA_PORT: String(port), ...extraEnv },
        timeout: 15_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, stdout, stderr }),
    ),
  );
}

const portOf = (server: TestServer) => Number(server.address.split(':').at(-1));

/** PEM files: a self-signed server certificate for localhost, a client CA and a client of it. */
function certificates(dir: string) {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const selfSigned = (name: string, ...ext: string[]) =>
    openssl(
      'req',
      '-x509',
      ...newKey,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.crt`),
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      ...ext.flatMap((e) => ['-addext', e]),
    );
  selfSigned('server', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
  selfSigned('clients', 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign');
  openssl(
    'req',
    ...newKey,
    '-keyout',
    file('client.key'),
    '-out',
    file('client.csr'),
    '-subj',
    '/CN=client',
  );
  writeFileSync(file('client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    file('client.csr'),
    '-CA',
    file('clients.crt'),
    '-CAkey',
    file('clients.key'),
    '-CAcreateserial',
    '-out',
    file('client.crt'),
    '-days',
    '2',
    '-extfile',
    file('client.ext'),
  );
  const tls = { QUOTA_TLS_CERT: file('server.crt'), QUOTA_TLS_KEY: file('server.key') };
  return {
    tls,
    mutual: { ...tls, QUOTA_TLS_CLIENT_CA: file('clients.crt') },
    client: ['--cert', file('client.crt'), '--key', file('client.key')],
  };
}

let db: TestDatabase;
let pending: TestDatabase;
let dir: string;
const servers: TestServer[] = [];
const start = async (url: string, extraEnv: Record<string, string> = {}) => {
  const server = await startTestServer(url, extraEnv);
  servers.push(server);
  return server;
};

beforeAll(async () => {
  db = await createTestDatabase();
  pending = await createTestDatabase({ empty: true });
  dir = mkdtempSync(path.join(tmpdir(), 'quota-healthcheck-'));
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await db?.drop();
  await pending?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the Dockerfile HEALTHCHECK', () => {
  it('is the healthcheck subcommand, in exec form', () => {
    expect(command).toEqual(['node', 'dist/src/main.js', 'healthcheck']);
  });

  it('exits 0 while the server answers SERVING', async () => {
    const server = await start(db.url);
    const outcome = await runHealthcheck(portOf(server));
    expect(outcome).toMatchObject({ code: 0, stderr: '' });
    expect(outcome.stdout).toMatch(/quota\.v1\.QuotaService: SERVING/);
  });

  it('exits 1 with one line on stderr while the server answers NOT_SERVING', async () => {
    // A database one migration behind: the server runs and says NOT_SERVING.
    await migrate(pending.url, silentLogger());
    await migrate(pending.url, silentLogger(), 'down', 1);
    const server = await start(pending.url);
    const outcome = await runHealthcheck(portOf(server));
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/^healthcheck: \S+ quota\.v1\.QuotaService: NOT_SERVING\n$/);
  });

  it('exits 1 with one line on stderr when nothing listens on the port', async () => {
    const outcome = await runHealthcheck(await freePort());
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/^healthcheck: 127\.0\.0\.1:\d+ \S+: UNAVAILABLE: [^\n]*\n$/);
  });

  it('speaks TLS to a TLS server, verifying its certificate against QUOTA_TLS_CERT', async () => {
    const certs = certificates(dir);
    const server = await start(db.url, certs.tls);
    expect(await runHealthcheck(portOf(server), certs.tls)).toMatchObject({ code: 0 });
    // A certificate for another name is refused, not trusted because it is the one configured.
    const wrongName = await runHealthcheck(portOf(server), certs.tls, ['--server-name', 'other']);
    expect(wrongName.code).toBe(1);
    // Without TLS the handshake fails.
    const plaintext = await runHealthcheck(portOf(server), certs.tls, ['--plaintext']);
    expect(plaintext.code).toBe(1);
    expect(plaintext.stderr).toMatch(/^healthcheck: [^\n]*UNAVAILABLE[^\n]*\n$/);
    // --insecure: encrypted, nothing verified, only when asked (and one line, no Node notice).
    expect(await runHealthcheck(portOf(server), {}, ['--insecure'])).toMatchObject({
      code: 0,
      stderr: '',
    });

    const mutual = await start(db.url, certs.mutual);
    const noClientCert = await runHealthcheck(portOf(mutual), certs.mutual);
    expect(noClientCert.code).toBe(1);
    expect(noClientCert.stderr).toMatch(/QUOTA_TLS_CLIENT_CA\): pass --cert and --key\n$/);
    expect(await runHealthcheck(portOf(mutual), certs.mutual, certs.client)).toMatchObject({
      code: 0,
    });
  });
});
