import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childrenOf } from '../support/childProcesses.js';
import {
  CheckCommandQuotaRequest,
  RecordExecutionRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';
import { OwnPostgres } from '../support/ownPostgres.js';

// Admitted commands and recorded executions are durable before they are answered: a database
// killed the moment the last answer arrives has them all after it restarts. Killing a server
// stops every database on it, so this file runs a PostgreSQL of its own.

let own: OwnPostgres | undefined;
let server: TestServer | undefined;

const USER = 'durable-user';
const check = (s: TestServer) =>
  s.client.quota.checkCommandQuota(
    CheckCommandQuotaRequest.fromPartial({ userId: USER, commandType: 'shell' }),
  );
const record = (s: TestServer, reservationId: string, i: number) =>
  s.client.quota.recordExecution(
    RecordExecutionRequest.fromPartial({
      reservationId,
      requestId: `rec-${reservationId || 'none'}-${i}`,
      userId: USER,
      commandType: 'shell',
      host: 'exec-1',
      duration: { seconds: 1, nanos: 500_000_000 },
      cpuPercent: 12.5,
      memoryBytes: 1_000_000 + i,
      exitCode: 0,
      status: 'completed',
    }),
  );

/** The postmaster's pid, from line 1 of postmaster.pid in the cluster folder. */
function postmasterPid(): number {
  return Number(readFileSync(path.join(own!.dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function gone(pid: number): boolean {
  try {
    // A zombie has let go of everything PostgreSQL checks at start (shared memory, the socket).
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z';
  } catch {
    return true;
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Ended already.
  }
}

beforeAll(async () => {
  own = await OwnPostgres.start('quota-durable');
  // The claim is durability, not latency: a generous bound keeps a busy box from degrading.
  server = await startTestServer(own.url, {
    QUOTA_DB_TIMEOUT_MS: '5000',
    QUOTA_LOAD_INTERVAL_MS: '600000',
  });
});

afterAll(async () => {
  await server?.stop();
  await own?.remove();
});

describe('a database killed with SIGKILL', () => {
  it('has every acknowledged execution and admitted reservation after it restarts', async () => {
    const s = server!;
    // The executor's flow once: check, run, record.
    const first = await check(s);
    expect(first).toMatchObject({ allowed: true, degraded: false });
    const firstExecution = await record(s, first.reservationId, 0);

    // A burst of admitted commands, then their executions and as many without a reservation,
    // all at once, while more commands keep being checked until the database dies.
    const burst = await Promise.all(Array.from({ length: 50 }, () => check(s)));
    expect(burst.every((x) => x.allowed && !x.degraded)).toBe(true);
    const admitted = [first, ...burst].map((x) => x.reservationId);

    let killed = false;
    const admittedLate: string[] = [];
    const checker = async () => {
      while (!killed) {
        const x = await check(s).catch(() => undefined);
        // The failure mode admits without a reservation: nothing to find later.
        if (x?.allowed && !x.degraded && x.reservationId) admittedLate.push(x.reservationId);
      }
    };
    // The long-lived processes (WAL writer, checkpointer, backends) are known before the burst:
    // they die within microseconds of the last answer, with nothing written after it.
    const postmaster = postmasterPid();
    expect(postmaster).toBe(own!.db.pid);
    const before = childrenOf(postmaster);

    const checkers = Array.from({ length: 4 }, checker);
    const recorded = await Promise.all([
      ...burst.map((x, i) => record(s, x.reservationId, i + 1)),
      ...Array.from({ length: 50 }, (_, i) => record(s, '', i + 1)),
    ]);
    // The moment the last acknowledgement arrives: everything of the cluster, at once.
    for (const pid of before) kill(pid);
    const later = childrenOf(postmaster);
    kill(postmaster);
    for (const pid of later) kill(pid);
    killed = true;
    await Promise.all(checkers);
    const acknowledged = [firstExecution, ...recorded].map((r) => r.executionId);
    expect(new Set(acknowledged).size).toBe(101);

    // The same folder and port: the server's pool finds the database again where it was.
    await own!.db.stop();
    await waitFor(() => [postmaster, ...before, ...later].every(gone), 10_000);
    await own!.restart();

    const executions = await own!.query<{ id: string; reservation_id: string | null }>(
      `SELECT id, reservation_id FROM command_executions WHERE user_id = '${USER}'`,
    );
    const stored = new Set(executions.map((x) => x.id));
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    const reservations = await own!.query<{ id: string; execution_id: string | null }>(
      `SELECT id, execution_id FROM command_reservations WHERE user_id = '${USER}'`,
    );
    const reserved = new Map(reservations.map((r) => [r.id, r.execution_id]));
    expect([...admitted, ...admittedLate].filter((id) => !reserved.has(id))).toEqual([]);
    // Each acknowledged execution settled its reservation in the same commit.
    const settledBy = [firstExecution, ...recorded.slice(0, 50)].map((r) => r.executionId);
    expect(admitted.map((id) => reserved.get(id))).toEqual(settledBy);
    // The usage row was committed with them: one unit per reservation and per execution that
    // had none (all completed), whatever else was in flight when the database died.
    const [usage] = await own!.query<{ day_used: string }>(
      `SELECT day_used FROM command_usage WHERE user_id = '${USER}' AND command_type = 'shell'`,
    );
    const unreserved = executions.filter((x) => x.reservation_id === null).length;
    expect(unreserved).toBeGreaterThanOrEqual(50);
    expect(Number(usage!.day_used)).toBe(reservations.length + unreserved);

    // The running server decides again once the database is back, without a restart.
    await waitFor(async () => {
      const again = await check(s).catch(() => undefined);
      return again?.allowed === true && !again.degraded;
    }, 15_000);
  });
});
