import { validateFigure } from '../core/validateFigure.js';
import { validateText } from '../core/validateText.js';
import { ValidationError } from '../errors.js';
import type { CommandQuotaInput, ExecutionInput, ExecutionStatus, TierName } from './types.js';
import { EXECUTION_STATUSES, TIER_NAMES } from './types.js';

/** Bytes of a user id, host or request id at most. */
export const MAX_ID_BYTES = 256;
/** Bytes of a command type at most. */
export const MAX_COMMAND_TYPE_BYTES = 64;
/** Units one command may cost at most. */
export const MAX_COST = 1_000;
/** Longest duration an execution may report: 31 days, in ms. */
export const MAX_DURATION_MS = 31 * 24 * 3600 * 1000;
/** CPU percent of one core at most: 1,024 cores fully used. */
export const MAX_CPU_PERCENT = 102_400;
/** Earliest and latest start an execution may report. */
const EARLIEST_START = Date.UTC(2000, 0, 1);
const LATEST_START = Date.UTC(2200, 0, 1);
/** Command types: letters, digits and _ . : - (so that "*" stays the rules' wildcard). */
const COMMAND_TYPE = /^[A-Za-z0-9_.:-]+$/;
const RESERVATION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A user id of a call: 1 to 256 bytes of storable text, not the rules' "*". */
export function validateUserId(userId: string, field = 'user_id'): string {
  if (userId === '') throw new ValidationError(field, 'is required');
  if (userId === '*') throw new ValidationError(field, '"*" names every user in rules only');
  return validateText(userId, field, MAX_ID_BYTES);
}

/** A command type of a call: 1 to 64 bytes of [A-Za-z0-9_.:-]. */
export function validateCommandType(commandType: string, field = 'command_type'): string {
  if (commandType === '') throw new ValidationError(field, 'is required');
  validateText(commandType, field, MAX_COMMAND_TYPE_BYTES);
  if (!COMMAND_TYPE.test(commandType)) {
    throw new ValidationError(field, 'must hold only letters, digits and _ . : -');
  }
  return commandType;
}

/** Checks a CheckCommandQuota request; throws ValidationError naming the field. */
export function validateCommandQuota(input: CommandQuotaInput): CommandQuotaInput {
  validateUserId(input.userId);
  validateCommandType(input.commandType);
  if (input.host !== undefined) validateText(input.host, 'host', MAX_ID_BYTES);
  if (input.requestId !== undefined) validateText(input.requestId, 'request_id', MAX_ID_BYTES);
  if (!Number.isSafeInteger(input.cost) || input.cost < 1 || input.cost > MAX_COST) {
    throw new ValidationError('cost', `must be between 0 (meaning 1) and ${MAX_COST}`);
  }
  return input;
}

/** A checked RecordExecution request. */
export interface ValidExecution extends ExecutionInput {
  readonly status: ExecutionStatus;
}

/** Checks a RecordExecution request; throws ValidationError naming the field. */
export function validateExecution(input: ExecutionInput): ValidExecution {
  validateUserId(input.userId);
  validateCommandType(input.commandType);
  if (input.host !== undefined) validateText(input.host, 'host', MAX_ID_BYTES);
  if (input.requestId !== undefined) validateText(input.requestId, 'request_id', MAX_ID_BYTES);
  if (input.reservationId !== undefined && !RESERVATION_ID.test(input.reservationId)) {
    throw new ValidationError(
      'reservation_id',
      'must be a reservation id from CheckCommandQuota (a lowercase UUID)',
    );
  }
  if (input.startedAt !== undefined) {
    const at = input.startedAt.getTime();
    if (!Number.isFinite(at) || at < EARLIEST_START || at >= LATEST_START) {
      throw new ValidationError('started_at', 'must be between 2000-01-01 and 2200-01-01');
    }
  }
  validateFigure(input.durationMs, 'duration');
  if (input.durationMs < 0 || input.durationMs > MAX_DURATION_MS) {
    throw new ValidationError('duration', `must be between 0 and 31 days`);
  }
  validateFigure(input.cpuPercent, 'cpu_percent');
  if (input.cpuPercent < 0 || input.cpuPercent > MAX_CPU_PERCENT) {
    throw new ValidationError('cpu_percent', `must be between 0 and ${MAX_CPU_PERCENT}`);
  }
  if (!Number.isSafeInteger(input.memoryBytes) || input.memoryBytes < 0) {
    throw new ValidationError('memory_bytes', `must be between 0 and ${Number.MAX_SAFE_INTEGER}`);
  }
  if (
    !Number.isInteger(input.exitCode) ||
    input.exitCode < -(2 ** 31) ||
    input.exitCode > 2 ** 31 - 1
  ) {
    throw new ValidationError('exit_code', 'must be a 32-bit integer');
  }
  const status = input.status === '' ? 'completed' : input.status;
  if (!(EXECUTION_STATUSES as readonly string[]).includes(status)) {
    throw new ValidationError('status', `must be one of ${EXECUTION_STATUSES.join(', ')}`);
  }
  return { ...input, status: status as ExecutionStatus };
}

/** A tier name: default, premium or enterprise. */
export function validateTier(tier: string, field = 'tier'): TierName {
  if (!(TIER_NAMES as readonly string[]).includes(tier)) {
    throw new ValidationError(field, `must be one of ${TIER_NAMES.join(', ')}`);
  }
  return tier as TierName;
}
