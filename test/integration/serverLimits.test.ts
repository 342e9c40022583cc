import type { ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dropSession,
  openSession,
  roundTrip,
  sessionClosed,
  startCall,
  type OpenCall,
} from '../../bench/rawHttp2.js';
import { connect, QuotaCallError } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startLoggedServer, type LoggedServer } from '../support/loggedServer.js';
import { waitFor } from '../support/waitFor.js';

const CHECK_LIMIT = '/quota.v1.QuotaService/CheckLimit';
const WATCH_LOAD = '/quota.v1.QuotaService/WatchLoad';
const RESOURCE_EXHAUSTED = 8;
const DEADLINE_EXCEEDED = 4;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** One CheckLimit through the generated client on a connection of its own. */
async function callOnNewConnection(address: string): Promise<void> {
  const client = connect({
    address: address,
    channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
    deadlineMs: 10_000,
  });
  try {
    await client.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'u' }));
  } finally {
    client.close();
  }
}

/** Resolves when the server closes `socket` (read to its end: a FIN is seen only after the data). */
function socketClosed(socket: net.Socket): Promise<void> {
  socket.resume();
  return socket.destroyed ? Promise.resolve() : new Promise((r) => socket.once('close', r));
}

function tcpConnect(address: string): Promise<net.Socket> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), host, () => resolve(s));
    s.once('error', reject);
  });
}

describe('with short timeouts', () => {
  let server: LoggedServer;
  beforeAll(async () => {
    server = await startLoggedServer(db.url, {
      QUOTA_MESSAGE_TIMEOUT_MS: '300',
      QUOTA_IDLE_TIMEOUT_MS: '500',
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers a request larger than QUOTA_MAX_MESSAGE_BYTES RESOURCE_EXHAUSTED', async () => {
    const client = connect({ address: server.address });
    try {
      const err = await client.quota
        .checkLimit(CheckLimitRequest.fromPartial({ userId: 'u', path: 'p'.repeat(70_000) }))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QuotaCallError);
      expect((err as QuotaCallError).code).toBe(RESOURCE_EXHAUSTED);
    } finally {
      client.close();
    }
  });

  it('refuses a 1 MB message from its length prefix, and closes the stream the client left open', async () => {
    const session = await openSession(server.address);
    try {
      const end = await startCall(session, CHECK_LIMIT, 1 << 20, 30_000).ended;
      expect(end.status).toBe(RESOURCE_EXHAUSTED);
    } finally {
      await dropSession(session);
    }
  });

  it('answers a message that stalls DEADLINE_EXCEEDED after QUOTA_MESSAGE_TIMEOUT_MS and logs it', async () => {
    const session = await openSession(server.address);
    try {
      const end = await startCall(session, CHECK_LIMIT, 1000, 10).ended;
      expect(end.status).toBe(DEADLINE_EXCEEDED);
      expect(end.message).toContain('incomplete after 300 ms');
      expect(server.lines.map((l) => l.msg)).toContain('request message incomplete: call cut');
    } finally {
      await dropSession(session);
    }
  });

  it('cuts 100 stalled messages on 25 connections, then closes the idle connections; other clients are answered meanwhile', async () => {
    const sessions = await Promise.all(
      Array.from({ length: 25 }, () => openSession(server.address)),
    );
    try {
      const calls: OpenCall[] = sessions.flatMap((s) =>
        Array.from({ length: 4 }, () => startCall(s, CHECK_LIMIT, 60_000, 30_000)),
      );
      await callOnNewConnection(server.address);
      const ends = await Promise.all(calls.map((c) => c.ended));
      expect(ends.map((e) => e.status)).toEqual(calls.map(() => DEADLINE_EXCEEDED));
      // No call open any more: the idle timeout closes every one of them.
      await Promise.all(sessions.map(sessionClosed));
      await callOnNewConnection(server.address);
    } finally {
      await Promise.all(sessions.map(dropSession));
    }
  });

  it('closes an idle HTTP/2 connection and a TCP connection that never speaks after QUOTA_IDLE_TIMEOUT_MS', async () => {
    const session = await openSession(server.address);
    const socket = await tcpConnect(server.address);
    socket.on('error', () => undefined);
    await Promise.all([sessionClosed(session), socketClosed(socket)]);
  });
});

describe('with a cap of 8 connections, 4 calls each, 6 incomplete requests', () => {
  let server: LoggedServer;
  beforeAll(async () => {
    server = await startLoggedServer(db.url, {
      QUOTA_MAX_CONNECTIONS: '8',
      QUOTA_MAX_STREAMS_PER_CONNECTION: '4',
      QUOTA_MAX_INCOMPLETE_REQUESTS: '6',
      QUOTA_MESSAGE_TIMEOUT_MS: '60000',
      QUOTA_IDLE_TIMEOUT_MS: '60000',
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('announces QUOTA_MAX_STREAMS_PER_CONNECTION to clients', async () => {
    const session = await openSession(server.address);
    try {
      expect(session.remoteSettings.maxConcurrentStreams).toBe(4);
    } finally {
      await dropSession(session);
    }
  });

  it('answers the oldest incomplete request RESOURCE_EXHAUSTED past QUOTA_MAX_INCOMPLETE_REQUESTS', async () => {
    const sessions = await Promise.all([openSession(server.address), openSession(server.address)]);
    try {
      const [a, b] = sessions as [ClientHttp2Session, ClientHttp2Session];
      // In this order on the server: three on one connection, then three on the other.
      const calls = [a, a, a].map((s) => startCall(s, CHECK_LIMIT, 1000, 10));
      await roundTrip(a);
      calls.push(...[b, b, b].map((s) => startCall(s, CHECK_LIMIT, 1000, 10)));
      await roundTrip(b);
      expect(calls.filter((c) => c.stream.closed)).toHaveLength(0);
      startCall(b, CHECK_LIMIT, 1000, 10);
      const first = await calls[0]!.ended;
      expect(first.status).toBe(RESOURCE_EXHAUSTED);
      expect(first.message).toContain('too many requests whose message has not fully arrived');
      expect(calls.slice(1).filter((c) => c.stream.closed)).toHaveLength(0);
    } finally {
      await Promise.all(sessions.map(dropSession));
    }
  });

  it('at the cap closes the longest-idle connection for a new client, and logs it', async () => {
    const idle = [];
    for (let i = 0; i < 8; i++) idle.push(await openSession(server.address));
    try {
      await callOnNewConnection(server.address);
      // The first one opened had been idle longest.
      await sessionClosed(idle[0]!);
      expect(server.lines.map((l) => l.msg)).toContain(
        'connection cap reached: closed the longest-idle connection for a new one',
      );
    } finally {
      await Promise.all(idle.map(dropSession));
    }
  });

  it('refuses a connection when every connection has a call open, and lets a client in once one is idle', async () => {
    const busy = [];
    for (let i = 0; i < 8; i++) {
      const session = await openSession(server.address);
      // A complete WatchLoad request: the call stays open, streaming snapshots.
      const call = startCall(session, WATCH_LOAD, 0, 0, true);
      await new Promise((r) => call.stream.once('response', r));
      busy.push({ session, call });
    }
    try {
      const refused = await tcpConnect(server.address);
      refused.on('error', () => undefined);
      await socketClosed(refused);
      expect(server.lines.map((l) => l.msg)).toContain(
        'connection cap reached and every connection has a call open: new connection refused',
      );
      // One caller ends its call: its connection is idle now, and gives way to a new client.
      busy[0]!.call.stream.close();
      await busy[0]!.call.ended;
      await waitFor(async () =>
        callOnNewConnection(server.address).then(
          () => true,
          () => false,
        ),
      );
      await sessionClosed(busy[0]!.session);
    } finally {
      await Promise.all(busy.map((b) => dropSession(b.session)));
    }
  });
});
