import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, QuotaCallError, Scope, type QuotaConnection } from '@quota-authority/client';
import { ConfigError } from '../../src/config.js';
import { loadServerCredentials } from '../../src/grpc/serverCredentials.js';
import { healthCheck } from '../support/healthCheck.js';
import { startLoggedServer, type LoggedServer } from '../support/loggedServer.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';

const UNAVAILABLE = 14;

/** A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, by openssl. */
function makeCertificates(dir: string): Record<string, string> {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ca = (name: string) =>
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.crt`),
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
  const leaf = (name: string, signer: string, extensions: string) => {
    writeFileSync(file(`${name}.ext`), extensions);
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
      '-subj',
      `/CN=${name}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file(`${signer}.crt`),
      '-CAkey',
      file(`${signer}.key`),
      '-CAcreateserial',
      '-out',
      file(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      file(`${name}.ext`),
    );
  };
  ca('ca');
  ca('other-ca');
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  return Object.fromEntries(
    ['ca', 'server', 'client', 'stranger'].flatMap((n) => [
      [`${n}.crt`, file(`${n}.crt`)],
      [`${n}.key`, file(`${n}.key`)],
    ]),
  );
}

let dir: string;
let files: Record<string, string>;
let db: TestDatabase;
const read = (name: string) => readFileSync(files[name]!);

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'quota-tls-'));
  files = makeCertificates(dir);
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The server's address by the name its certificate holds (TLS names no IP address, RFC 6066). */
const byName = (server: LoggedServer) => `localhost:${server.app.port}`;

/** A call that reads the database; resolves, or rejects with the call's error. */
async function listRules(address: string, credentials: grpc.ChannelCredentials): Promise<void> {
  const client: QuotaConnection = connect({
    address: address,
    tls: credentials,
    channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
  });
  try {
    await client.admin.listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED });
  } finally {
    client.close();
  }
}

async function code(p: Promise<unknown>): Promise<number | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => (e instanceof QuotaCallError ? e.code : -1),
  );
}

describe('TLS (QUOTA_TLS_CERT, QUOTA_TLS_KEY)', () => {
  let server: LoggedServer;
  beforeAll(async () => {
    server = await startLoggedServer(db.url, {
      QUOTA_TLS_CERT: files['server.crt']!,
      QUOTA_TLS_KEY: files['server.key']!,
      QUOTA_IDLE_TIMEOUT_MS: '500',
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers a client that trusts the CA, health included', async () => {
    const creds = grpc.credentials.createSsl(read('ca.crt'));
    await listRules(byName(server), creds);
    expect(await healthCheck(byName(server), '', creds)).toBe('SERVING');
  });

  it('answers no plaintext client', async () => {
    expect(await code(listRules(server.address, grpc.credentials.createInsecure()))).toBe(
      UNAVAILABLE,
    );
  });

  it('closes a connection whose handshake never starts after QUOTA_IDLE_TIMEOUT_MS', async () => {
    const socket = net.connect(Number(server.address.split(':')[1]), '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume();
    await new Promise((r) => socket.once('close', r));
  });
});

describe('mutual TLS (QUOTA_TLS_CLIENT_CA)', () => {
  let server: LoggedServer;
  beforeAll(async () => {
    server = await startLoggedServer(db.url, {
      QUOTA_TLS_CERT: files['server.crt']!,
      QUOTA_TLS_KEY: files['server.key']!,
      QUOTA_TLS_CLIENT_CA: files['ca.crt']!,
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers a client with a certificate the client CA signed, health included', async () => {
    const creds = grpc.credentials.createSsl(
      read('ca.crt'),
      read('client.key'),
      read('client.crt'),
    );
    await listRules(byName(server), creds);
    expect(await healthCheck(byName(server), '', creds)).toBe('SERVING');
  });

  it('refuses a client without a certificate', async () => {
    const creds = grpc.credentials.createSsl(read('ca.crt'));
    expect(await code(listRules(byName(server), creds))).toBe(UNAVAILABLE);
  });

  it('refuses a client whose certificate another CA signed', async () => {
    const creds = grpc.credentials.createSsl(
      read('ca.crt'),
      read('stranger.key'),
      read('stranger.crt'),
    );
    expect(await code(listRules(byName(server), creds))).toBe(UNAVAILABLE);
  });
});

describe('bad TLS files fail the start, naming the variable', () => {
  const problems = (tls: { certFile: string; keyFile: string; clientCaFile?: string }) => {
    try {
      loadServerCredentials({ clientCaFile: undefined, ...tls });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
    throw new Error('no error');
  };

  it('a missing file', () => {
    expect(
      problems({ certFile: path.join(dir, 'nope.crt'), keyFile: files['server.key']! }),
    ).toEqual([`QUOTA_TLS_CERT=${path.join(dir, 'nope.crt')}: cannot be read (ENOENT)`]);
  });

  it('a key that does not match the certificate', () => {
    expect(problems({ certFile: files['server.crt']!, keyFile: files['client.key']! })).toEqual([
      `QUOTA_TLS_KEY=${files['client.key']}: does not match the certificate in QUOTA_TLS_CERT=${files['server.crt']}`,
    ]);
  });

  it('a file that is not PEM', () => {
    const [problem] = problems({
      certFile: files['server.crt']!,
      keyFile: files['server.key']!,
      clientCaFile: files['server.key']!,
    });
    expect(problem).toContain('QUOTA_TLS_CLIENT_CA=');
    expect(problem).toContain('not a PEM certificate');
  });

  it('before the server starts anything', async () => {
    await expect(
      startLoggedServer(db.url, {
        QUOTA_TLS_CERT: files['server.crt']!,
        QUOTA_TLS_KEY: files['client.key']!,
      }),
    ).rejects.toThrow(/QUOTA_TLS_KEY=.*does not match/);
  });
});
