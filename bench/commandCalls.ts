/**
 * The command-quota calls the bench makes, as an executor makes them: CheckCommandQuota for a
 * user and command type `shell`, then RecordExecution of a realistic run (host, duration, CPU,
 * memory, one in 20 failed), settling the reservation the check returned when there is one.
 * No call carries a request_id, as in the CheckLimit scenarios.
 */
import {
  CheckCommandQuotaRequest,
  type CheckCommandQuotaResponse,
  RecordExecutionRequest,
  type RecordExecutionResponse,
} from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import type { Caller, Outcome } from './measure.js';

export const COMMAND_TYPE = 'shell';
/** Never reports its load: its throttle factor is 1, so nothing is delayed or refused for it. */
const HOST = 'bench-executor';
const USERS = 10_000;

/** The user of call i among the 10,000 (u0..u9999). */
export const userOf = (i: number): string => `u${i % USERS}`;

/** Reservations admitted by CheckCommandQuota, for RecordExecution to settle, oldest first. */
export class Reservations {
  private readonly users: string[] = [];
  private readonly ids: string[] = [];
  private next = 0;

  /** Reservations not taken yet. */
  get available(): number {
    return this.ids.length - this.next;
  }

  add(userId: string, reservationId: string): void {
    this.users.push(userId);
    this.ids.push(reservationId);
  }

  take(): { userId: string; reservationId: string } | undefined {
    if (this.next >= this.ids.length) return undefined;
    const i = this.next++;
    return { userId: this.users[i]!, reservationId: this.ids[i]! };
  }
}

export type CheckCommand = Caller<CheckCommandQuotaRequest, CheckCommandQuotaResponse>;
export type RecordCommand = Caller<RecordExecutionRequest, RecordExecutionResponse>;

/** CheckCommandQuota for `userId`; an admitted call's reservation goes to `pool` when given. */
export function checkCommand(
  check: CheckCommand,
  userId: string,
  pool?: Reservations,
): Promise<Outcome> {
  return check(
    CheckCommandQuotaRequest.fromPartial({ userId, commandType: COMMAND_TYPE, host: HOST }),
  ).then((res) => {
    if (pool && res.allowed && res.reservationId) pool.add(userId, res.reservationId);
    return res;
  });
}

const STORED: Outcome = { allowed: true, degraded: false };

/** RecordExecution of call i for `userId`, settling `reservationId` when given. */
export function recordCommand(
  record: RecordCommand,
  i: number,
  userId: string,
  reservationId = '',
): Promise<Outcome> {
  const failed = i % 20 === 0;
  return record(
    RecordExecutionRequest.fromPartial({
      reservationId,
      userId,
      commandType: COMMAND_TYPE,
      host: HOST,
      duration: { seconds: 1, nanos: 250_000_000 + (i % 1000) * 1_000_000 },
      cpuPercent: 12.5 + (i % 50),
      memoryBytes: 50_000_000 + (i % 100) * 1_000_000,
      exitCode: failed ? 1 : 0,
      status: failed ? 'failed' : 'completed',
    }),
  ).then(() => STORED);
}
