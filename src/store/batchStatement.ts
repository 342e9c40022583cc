import pg from 'pg';
import { RejectedInputError, StoreNotMigratedError, StoreUnavailableError } from '../errors.js';
import type { Database } from './Database.js';
import { DecisionTooLateError } from './DecisionBatcher.js';

/**
 * What the batched decision statements (quota_decide, command_quota_decide,
 * command_record_executions) share: the budget they are sent with, and how their errors are
 * told apart.
 */

/**
 * SQLSTATEs of a statement that did not get done, through no item's fault: the deadline, a lock
 * wait past it, a deadlock or serialization failure. Nothing took effect; it is tried again.
 */
const TOO_LATE = new Set(['57014', '55P03', '40P01', '40001']);
/**
 * Read-only transaction, insufficient resources, operator intervention (shutdown, crash). Not
 * 53200, out of (shared) memory: a full lock table (a batch of many request_ids, each an
 * advisory lock) is the batch's size, and its halves are decided. (53300, no connection to be
 * had, never gets here: Database answers it as StoreUnavailableError.)
 */
const CANNOT_DECIDE = /^(25006|53[014]00|57P)/;

/**
 * SQLSTATE classes (and codes) that no value of one item can cause: the connection, the
 * server's state (read only, shutting down), the schema, the server itself. A batch refused with
 * one of these is not decided again in parts: every part would be refused the same way.
 */
const NOT_FROM_AN_ITEM = /^(08|25|28|3D|3F|42|55|57|58|F0|XX)/;

/**
 * The time left to the deadline, in whole ms, read when pg writes the query to its connection
 * (pg calls a parameter's toPostgres() then): the database counts its budget from the moment it
 * starts, so a wait for a pooled connection must come off the budget, not be granted again.
 */
export function budgetAtSend(deadline: number): { toPostgres(): string } {
  return { toPostgres: () => String(Math.max(0, Math.floor(deadline - performance.now()))) };
}

/**
 * Calls a batched stored function, `text` naming its one result column `result`: not at all
 * with less than the database's 1 ms left before `deadline`, and its failure passed on as
 * batchError says. `values` carry the budget (budgetAtSend) where the function takes it.
 */
export async function callBatchFunction<T>(
  db: Database,
  text: string,
  values: readonly unknown[],
  options: { readonly name: string; readonly fast: boolean },
  deadline: number,
): Promise<T> {
  requireTimeLeft(deadline);
  const result = await db.query<{ result: T }>(text, [...values], options).catch((err: unknown) => {
    throw batchError(err);
  });
  return result.rows[0]!.result;
}

/** Throws DecisionTooLateError when less than the database's 1 ms resolution is left. */
function requireTimeLeft(deadline: number): void {
  if (deadline - performance.now() < 1) {
    throw new DecisionTooLateError('no time left to decide before the caller gives up');
  }
}

/**
 * The error a batch statement's failure is passed on as: a database that could not decide
 * before the deadline counted nothing (DecisionTooLateError: the batch's callers with time left
 * are decided again); a server that answers but cannot decide at all (a read-only standby after
 * a failover, out of resources, shutting down) is the failure mode's case, like one that does
 * not answer. Anything else as it is.
 */
function batchError(err: unknown): unknown {
  const code = sqlState(err);
  if (code !== undefined && TOO_LATE.has(code)) {
    return new DecisionTooLateError(`decision not made in time: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (code !== undefined && CANNOT_DECIDE.test(code)) {
    return new StoreUnavailableError(`database cannot decide: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return err;
}

/** Whether a batch's error may come from one of its items (DecisionBatcher `isolate`). */
export function mayBeAnItems(err: unknown): boolean {
  // A missing function or table fails every statement alike: splitting would only repeat it.
  if (err instanceof StoreNotMigratedError) return false;
  return !NOT_FROM_AN_ITEM.test(sqlState(err) ?? '');
}

/** The error an item that fails alone gets (DecisionBatcher `itemError`). */
export function itemError(err: unknown): unknown {
  // Class 22, data exception: a value PostgreSQL cannot take, so the caller's input.
  return err instanceof pg.DatabaseError && sqlState(err)?.startsWith('22')
    ? new RejectedInputError(err.message, { cause: err })
    : err;
}

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The one comparison (of UTF-16 code units) that orders locks on every replica. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
