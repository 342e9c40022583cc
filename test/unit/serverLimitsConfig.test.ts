import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeVariables, loadConfig } from '../../src/config.js';
import { ConnectionGuard, RESERVED_FILES } from '../../src/grpc/ConnectionGuard.js';
import { serverOptions } from '../../src/grpc/GrpcServer.js';

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('server limits and TLS configuration', () => {
  it('has the documented defaults, and serves plaintext unless told otherwise', () => {
    const c = loadConfig({});
    expect(c.server).toEqual({
      maxConnections: 1000,
      maxStreamsPerConnection: 1000,
      maxMessageBytes: 65536,
      idleTimeoutMs: 60_000,
      messageTimeoutMs: 10_000,
      maxIncompleteRequests: 1000,
    });
    expect(c.tls).toBeUndefined();
  });

  it('gives grpc-js the message size, calls per connection and idle timeout', () => {
    const c = loadConfig({
      QUOTA_MAX_MESSAGE_BYTES: '8192',
      QUOTA_MAX_STREAMS_PER_CONNECTION: '7',
      QUOTA_IDLE_TIMEOUT_MS: '1234',
    });
    expect(serverOptions(c.server)).toMatchObject({
      'grpc.max_receive_message_length': 8192,
      'grpc.max_concurrent_streams': 7,
      'grpc.max_connection_idle_ms': 1234,
    });
  });

  it('names each bad limit', () => {
    const bad = problems({
      QUOTA_MAX_CONNECTIONS: '0',
      QUOTA_MAX_MESSAGE_BYTES: '10',
      QUOTA_MESSAGE_TIMEOUT_MS: 'soon',
    });
    expect(bad.map((p) => p.split('=')[0])).toEqual([
      'QUOTA_MAX_CONNECTIONS',
      'QUOTA_MAX_MESSAGE_BYTES',
      'QUOTA_MESSAGE_TIMEOUT_MS',
    ]);
  });

  it('takes the TLS files as given', () => {
    expect(
      loadConfig({
        QUOTA_TLS_CERT: '/c.pem',
        QUOTA_TLS_KEY: '/k.pem',
        QUOTA_TLS_CLIENT_CA: '/ca.pem',
      }).tls,
    ).toEqual({ certFile: '/c.pem', keyFile: '/k.pem', clientCaFile: '/ca.pem' });
  });

  it('wants a certificate and its key together, and a client CA only with them', () => {
    expect(problems({ QUOTA_TLS_CERT: '/c.pem' })).toEqual([
      'QUOTA_TLS_CERT and QUOTA_TLS_KEY: set both or neither',
    ]);
    expect(problems({ QUOTA_TLS_CLIENT_CA: '/ca.pem' })).toEqual([
      'QUOTA_TLS_CLIENT_CA: needs QUOTA_TLS_CERT and QUOTA_TLS_KEY',
    ]);
  });

  it('lists every new variable for --help', () => {
    const help = describeVariables();
    for (const name of [
      'QUOTA_MAX_CONNECTIONS',
      'QUOTA_MAX_STREAMS_PER_CONNECTION',
      'QUOTA_MAX_MESSAGE_BYTES',
      'QUOTA_IDLE_TIMEOUT_MS',
      'QUOTA_MESSAGE_TIMEOUT_MS',
      'QUOTA_MAX_INCOMPLETE_REQUESTS',
      'QUOTA_TLS_CERT',
      'QUOTA_TLS_KEY',
      'QUOTA_TLS_CLIENT_CA',
    ])
      expect(help).toContain(name);
  });
});

describe('the connection cap', () => {
  const limits = loadConfig({}).server;

  it(`stays ${RESERVED_FILES} files below the open-file limit, and says so`, () => {
    const lines: { msg: string; maxConnections?: number }[] = [];
    const logger = pino(
      { level: 'warn' },
      { write: (l: string) => void lines.push(JSON.parse(l)) },
    );
    expect(new ConnectionGuard(limits, logger, 1024).maxConnections).toBe(1024 - RESERVED_FILES);
    expect(lines).toMatchObject([
      { msg: 'QUOTA_MAX_CONNECTIONS lowered to fit the open-file limit', maxConnections: 896 },
    ]);
  });

  it('is QUOTA_MAX_CONNECTIONS when the limit leaves room', () => {
    expect(new ConnectionGuard(limits, pino({ level: 'silent' }), 20_000).maxConnections).toBe(
      1000,
    );
  });
});
