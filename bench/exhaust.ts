/**
 * Resource-exhaustion bench (issue 12): one client tries to exhaust the server. Starts
 * `node dist/src/main.js serve` (embedded PostgreSQL in a temporary folder, or DATABASE_URL) under
 * an open-file limit of QUOTA_BENCH_NOFILE (default 1024, through prlimit; 0 leaves it), then:
 *
 * 1. stalled: QUOTA_BENCH_STALLED (1,000) calls whose message claims QUOTA_BENCH_CLAIM_BYTES
 *    (1 MiB) and sends QUOTA_BENCH_SEND_BYTES (half) of it, then stalls, 100 per connection;
 * 2. stalled-small: as many calls that claim just under the message limit (60,000 bytes) and
 *    send QUOTA_BENCH_SMALL_SEND_BYTES (half) of it: what a stalled call can make the server
 *    buffer;
 * 3. idle: QUOTA_BENCH_IDLE (1,100) HTTP/2 connections that open and then say nothing;
 *
 * all held at once, then one new client's CheckLimit on a connection of its own. It samples the
 * server's resident memory (VmRSS) throughout and prints it per phase, the new client's result
 * and latency, how the server answered the stalled calls, how many connections it closed, and
 * its log lines about limits. QUOTA_* variables in the environment reach the server (to compare
 * with other limits). Run: `npm run build && npm run bench:exhaust`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect, QuotaCallError } from '@quota-authority/client';
import { CheckLimitRequest } from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import { freePort } from '../src/freePort.js';
import { dropSession, openSession, sessionClosed, startCall, type CallEnd } from './rawHttp2.js';
import { waitServing } from './startServer.js';

const NOFILE = Number(process.env['QUOTA_BENCH_NOFILE'] ?? 1024);
const STALLED = Number(process.env['QUOTA_BENCH_STALLED'] ?? 1000);
const CLAIM = Number(process.env['QUOTA_BENCH_CLAIM_BYTES'] ?? 1 << 20);
const SEND = Number(process.env['QUOTA_BENCH_SEND_BYTES'] ?? CLAIM / 2);
const SMALL_CLAIM = 60_000;
const SMALL_SEND = Number(process.env['QUOTA_BENCH_SMALL_SEND_BYTES'] ?? SMALL_CLAIM / 2);
const IDLE = Number(process.env['QUOTA_BENCH_IDLE'] ?? 1100);
const PER_CONNECTION = 100;
const CHECK_LIMIT = '/quota.v1.QuotaService/CheckLimit';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Resident memory of `pid` in MiB (VmRSS). */
function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

/** The server, under the open-file limit, with its log lines kept. */
async function startServer(): Promise<{
  child: ChildProcess;
  address: string;
  logs: { msg: string; [k: string]: unknown }[];
  stop(): Promise<void>;
}> {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'quota-exhaust-'));
  const node = [process.execPath, path.join(here, '..', 'src', 'main.js'), 'serve'];
  const [command, ...args] =
    NOFILE > 0 ? ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--', ...node] : node;
  const child = spawn(command!, args, {
    env: {
      QUOTA_AUTH: 'disabled',
      ...process.env,
      QUOTA_HOST: '127.0.0.1',
      QUOTA_PORT: String(port),
      QUOTA_DATA_DIR: dataDir,
      QUOTA_METRICS_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const logs: { msg: string }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      const entry = JSON.parse(line) as { msg: string; level: number; limits?: unknown };
      if (entry.level >= 40) logs.push(entry);
      if (entry.msg === 'quota-authority listening') {
        console.log(`server limits: ${JSON.stringify(entry.limits)}`);
      }
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    address: `127.0.0.1:${port}`,
    logs,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** One CheckLimit on a connection of its own: its outcome and latency. */
async function newClientCall(address: string): Promise<string> {
  const client = connect({
    address: address,
    channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
    deadlineMs: 10_000,
  });
  const started = performance.now();
  try {
    const res = await client.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'new' }));
    return `OK in ${(performance.now() - started).toFixed(1)} ms (allowed=${res.allowed})`;
  } catch (err) {
    const code = err instanceof QuotaCallError ? `code ${err.code}` : String(err);
    return `FAILED in ${(performance.now() - started).toFixed(1)} ms: ${code} ${(err as Error).message}`;
  } finally {
    client.close();
  }
}

/** Opens `n` connections, `batch` at a time; those the server refused are counted, not kept. */
async function openMany(address: string, n: number, batch = 100) {
  const sessions: ClientHttp2Session[] = [];
  let refused = 0;
  for (let i = 0; i < n; i += batch) {
    const opened = await Promise.allSettled(
      Array.from({ length: Math.min(batch, n - i) }, () => openSession(address)),
    );
    for (const o of opened) {
      if (o.status === 'fulfilled') sessions.push(o.value);
      else refused++;
    }
  }
  return { sessions, refused };
}

/** `n` stalled calls, PER_CONNECTION on each connection. */
async function stall(address: string, n: number, claim: number, send: number) {
  const { sessions } = await openMany(address, Math.ceil(n / PER_CONNECTION));
  const ends: Promise<CallEnd>[] = [];
  for (let i = 0; i < n; i++) {
    const session = sessions[Math.floor(i / PER_CONNECTION)];
    if (session && !session.closed) ends.push(startCall(session, CHECK_LIMIT, claim, send).ended);
  }
  return { sessions, ends };
}

function tally(ends: CallEnd[]): string {
  const counts = new Map<string, number>();
  for (const e of ends) {
    const key = e.status === undefined ? `no status (RST ${e.rstCode})` : `status ${e.status}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, v]) => `${v} × ${k}`).join(', ');
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const server = await startServer();
  const pid = server.child.pid!;
  // prlimit execs node in place: the same process id.
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(pid));
    } catch {
      // ended
    }
  }, 100);
  const note = (phase: string) => {
    const rss = rssMiB(pid);
    peak = Math.max(peak, rss);
    console.log(`${phase.padEnd(52)} RSS ${rss.toFixed(0)} MiB (peak so far ${peak.toFixed(0)})`);
  };
  try {
    const probe = connect({ address: server.address, deadlineMs: 10_000 });
    await waitServing(probe);
    probe.close();
    const limits = readFileSync(`/proc/${pid}/limits`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    console.log(`server pid ${pid}; ${limits?.replace(/\s+/g, ' ')}`);
    console.log(`new client before the attack: ${await newClientCall(server.address)}`);
    await pause(1000);
    note('before the attack');

    const big = await stall(server.address, STALLED, CLAIM, SEND);
    await pause(2000);
    note(`${STALLED} stalled calls claiming ${CLAIM} B, ${SEND} B sent`);
    const small = await stall(server.address, STALLED, SMALL_CLAIM, SMALL_SEND);
    await pause(2000);
    note(`+ ${STALLED} stalled calls claiming ${SMALL_CLAIM} B, ${SMALL_SEND} B sent`);
    const idle = await openMany(server.address, IDLE);
    await pause(1000);
    note(`+ ${IDLE} idle connections (${idle.refused} refused)`);

    console.log(`new client during the attack: ${await newClientCall(server.address)}`);
    const closedIdle = idle.sessions.filter((s) => s.closed).length;

    const bigEnds = await Promise.all(big.ends);
    const smallEnds = await Promise.all(small.ends);
    await pause(1000);
    note('stalled calls ended by the server');
    console.log(`  big claims: ${tally(bigEnds)}`);
    console.log(`  small claims: ${tally(smallEnds)}`);
    console.log(`  idle connections closed by the server so far: ${closedIdle} of ${IDLE}`);
    console.log(`new client after the stalls: ${await newClientCall(server.address)}`);

    const attackers = [...big.sessions, ...small.sessions, ...idle.sessions];
    await Promise.all(attackers.map(dropSession));
    await Promise.all(attackers.map(sessionClosed));
    await pause(3000);
    note('attacker gone');
    console.log(`peak RSS ${peak.toFixed(0)} MiB`);
    const byMessage = new Map<string, number>();
    for (const l of server.logs) byMessage.set(l.msg, (byMessage.get(l.msg) ?? 0) + 1);
    console.log('server warnings:');
    for (const [msg, n] of byMessage) console.log(`  ${n} × ${msg}`);
    for (const l of server.logs.filter((l) => 'repeated' in l)) {
      console.log(`  … "${l.msg}" repeated ${String(l['repeated'])} times`);
    }
  } finally {
    clearInterval(sampler);
    await server.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
