import { randomUUID } from 'node:crypto';
import { NotFoundError, PreconditionError } from '../errors.js';
import type {
  CommandQuotaStore,
  CurrentUsage,
  ExecutionRecord,
  QuotaDecision,
  QuotaDecisionRequest,
} from '../quotas/ports.js';
import {
  NO_EXECUTIONS,
  QUOTA_PERIODS,
  REFUNDED_STATUSES,
  type ExecutionSummary,
  type QuotaPeriod,
} from '../quotas/types.js';
import {
  budgetAtSend,
  callBatchFunction,
  compare,
  itemError,
  mayBeAnItems,
} from './batchStatement.js';
import type { Database } from './Database.js';
import { DecisionBatcher } from './DecisionBatcher.js';

const DECIDE = `SELECT command_quota_decide($1::text[], $2::text[], $3::int[], $4::bigint[],
  $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::uuid[], $10::text, $11::int, $12::int,
  $13::timestamptz) AS result`;

const RECORD = `SELECT command_record_executions($1::text[], $2::text[], $3::int[], $4::uuid[],
  $5::text[], $6::text[], $7::timestamptz[], $8::float8[], $9::float8[], $10::bigint[], $11::int[],
  $12::text[], $13::boolean[], $14::text, $15::int, $16::timestamptz) AS result`;

/**
 * The current periods' ends, and the user's usage in them per command type: one row per command
 * type with usage this month, or one row with a NULL command type when there is none. A stored
 * period older than the current one counts 0.
 */
const USAGE = `SELECT b.day_end, b.week_end, b.month_end, u.command_type,
    CASE WHEN u.day_start >= b.day_start THEN u.day_used ELSE 0 END AS day_used,
    CASE WHEN u.week_start >= b.week_start THEN u.week_used ELSE 0 END AS week_used,
    CASE WHEN u.month_start >= b.month_start THEN u.month_used ELSE 0 END AS month_used
  FROM command_quota_bounds($2::text, coalesce($3::timestamptz, now())) b
  LEFT JOIN command_usage u ON u.user_id = $1 AND u.month_start >= b.month_start`;

/** The user's figures of the last 24 h, per command type and in total (command_type NULL). */
const RECENT = `SELECT command_type, executions, failures, average_duration_ms, p95_duration_ms,
    average_cpu_percent, max_memory_bytes
  FROM command_execution_summary($1, coalesce($2::timestamptz, now()) - interval '24 hours',
    coalesce($2::timestamptz, now()))`;

/** The jsonb that command_quota_decide returns for one decision. */
interface DecisionJson {
  allowed: boolean;
  exhausted: QuotaPeriod[];
  used: [number, number, number];
  resets_ms: [number, number, number];
  reservation_id: string | null;
  replayed?: boolean;
}

/** The jsonb that command_record_executions returns for one execution. */
type RecordJson =
  | { execution_id: string; error?: undefined }
  | { error: 'not_found' | 'mismatch' | 'settled'; message: string };

interface Decision extends QuotaDecisionRequest {
  /** Drawn before the batch: the reservation id, if the decision admits. */
  readonly reservationId: string;
}

export interface PgCommandQuotaStoreOptions {
  /** Told the size of each decision batch sent (metrics). */
  readonly onBatch?: (items: number) => void;
  /** Time within which a caller has its decision, queueing and the failure mode included, in ms. */
  readonly timeoutMs: number;
  /** Time within which an execution is stored or refused as unavailable, in ms. */
  readonly recordTimeoutMs: number;
  /**
   * The time decisions, records and reads are made at. Unset: the database clock (what the
   * service uses); tests set it to prove roll-over without waiting.
   */
  readonly now?: () => Date;
}

/**
 * Command quota decisions and executions by the stored functions command_quota_decide and
 * command_record_executions, each batched by a {@link DecisionBatcher}: concurrent calls share a
 * round trip, one lock per usage row and one durable commit, which is what lets one busy user
 * go past one commit per command. Decisions on one user and command type share their one row.
 */
export class PgCommandQuotaStore implements CommandQuotaStore {
  private readonly decisions: DecisionBatcher<Decision, DecisionJson>;
  private readonly records: DecisionBatcher<ExecutionRecord, RecordJson>;

  constructor(
    private readonly db: Database,
    private readonly options: PgCommandQuotaStoreOptions,
  ) {
    const batching = (answerWithinMs: number) => ({
      // As PgLimitStore: a tenth of the time is kept for the answer's way back.
      answerWithinMs: Math.round(answerWithinMs * 0.9),
      marginMs: Math.max(1, Math.round(answerWithinMs * 0.1)),
      overflowAt: 256,
      maxBatch: 256,
      maxItems: 1024,
      isolate: mayBeAnItems,
      itemError,
    });
    this.decisions = new DecisionBatcher({
      ...batching(options.timeoutMs),
      batchKey: (d) => `${d.timezone}\u0000${d.reservationTtlS}`,
      idempotencyKey: (d) => d.idempotencyKey,
      sharedKeys: (d) => [usageId(d)],
      decide: (batch, deadline) => {
        options.onBatch?.(batch.length);
        return this.decideBatch(batch, deadline);
      },
    });
    this.records = new DecisionBatcher({
      ...batching(options.recordTimeoutMs),
      batchKey: (r) => r.timezone,
      idempotencyKey: (r) => r.idempotencyKey,
      sharedKeys: (r) => [usageId(r)],
      decide: (batch, deadline) => this.recordBatch(batch, deadline),
    });
  }

  /** Decisions and execution records waiting for a batch to take them. */
  get queued(): { readonly decisions: number; readonly records: number } {
    return { decisions: this.decisions.queued, records: this.records.queued };
  }

  async decide(request: QuotaDecisionRequest): Promise<QuotaDecision> {
    const d = await this.decisions.submit({ ...request, reservationId: randomUUID() });
    return {
      allowed: d.allowed,
      replayed: d.replayed === true,
      exhausted: d.exhausted,
      periods: QUOTA_PERIODS.map((period, i) => ({
        period,
        used: Number(d.used[i]),
        resetsAt: new Date(Number(d.resets_ms[i])),
      })),
      reservationId: d.reservation_id,
    };
  }

  async record(execution: ExecutionRecord): Promise<{ executionId: string }> {
    const r = await this.records.submit(execution);
    if (r.error === 'not_found') throw new NotFoundError('reservation', execution.reservationId!);
    if (r.error) throw new PreconditionError(r.message);
    return { executionId: r.execution_id };
  }

  async usage(userId: string, timezone: string): Promise<CurrentUsage> {
    const result = await this.db.query<{
      day_end: Date;
      week_end: Date;
      month_end: Date;
      command_type: string | null;
      day_used: string | null;
      week_used: string | null;
      month_used: string | null;
    }>(USAGE, [userId, timezone, this.options.now?.() ?? null]);
    const b = result.rows[0]!;
    const resets = [b.day_end, b.week_end, b.month_end];
    return {
      bounds: QUOTA_PERIODS.map((period, i) => ({ period, used: 0, resetsAt: resets[i]! })),
      commands: result.rows
        .filter((row) => row.command_type !== null)
        .map((row) => ({
          commandType: row.command_type!,
          periods: QUOTA_PERIODS.map((period, i) => ({
            period,
            used: Number([row.day_used, row.week_used, row.month_used][i]),
            resetsAt: resets[i]!,
          })),
        })),
    };
  }

  async recent(userId: string): Promise<{
    readonly total: ExecutionSummary;
    readonly byCommandType: ReadonlyMap<string, ExecutionSummary>;
  }> {
    const result = await this.db.query<{
      command_type: string | null;
      executions: string;
      failures: string;
      average_duration_ms: number;
      p95_duration_ms: number;
      average_cpu_percent: number;
      max_memory_bytes: string;
    }>(RECENT, [userId, this.options.now?.() ?? null]);
    const byCommandType = new Map<string, ExecutionSummary>();
    let total: ExecutionSummary = NO_EXECUTIONS;
    for (const row of result.rows) {
      const summary: ExecutionSummary = {
        count: Number(row.executions),
        failures: Number(row.failures),
        averageDurationMs: row.average_duration_ms,
        p95DurationMs: row.p95_duration_ms,
        averageCpuPercent: row.average_cpu_percent,
        maxMemoryBytes: Number(row.max_memory_bytes),
      };
      if (row.command_type === null) total = summary;
      else byCommandType.set(row.command_type, summary);
    }
    return { total, byCommandType };
  }

  private async decideBatch(batch: readonly Decision[], deadline: number): Promise<DecisionJson[]> {
    const pairs = usagePairs(batch);
    const first = batch[0]!;
    return callBatchFunction<DecisionJson[]>(
      this.db,
      DECIDE,
      [
        pairs.users,
        pairs.types,
        pairs.counter,
        batch.map((d) => d.cost),
        batch.map((d) => d.limits.daily),
        batch.map((d) => d.limits.weekly),
        batch.map((d) => d.limits.monthly),
        batch.map((d) => d.idempotencyKey),
        batch.map((d) => d.reservationId),
        first.timezone,
        first.reservationTtlS,
        budgetAtSend(deadline),
        this.options.now?.() ?? null,
      ],
      { name: 'command_quota_decide', fast: true },
      deadline,
    );
  }

  private async recordBatch(
    batch: readonly ExecutionRecord[],
    deadline: number,
  ): Promise<RecordJson[]> {
    const pairs = usagePairs(batch);
    return callBatchFunction<RecordJson[]>(
      this.db,
      RECORD,
      [
        pairs.users,
        pairs.types,
        pairs.counter,
        batch.map((r) => r.reservationId),
        batch.map((r) => r.idempotencyKey),
        batch.map((r) => r.host),
        batch.map((r) => r.startedAt),
        batch.map((r) => r.durationMs),
        batch.map((r) => r.cpuPercent),
        batch.map((r) => r.memoryBytes),
        batch.map((r) => r.exitCode),
        batch.map((r) => r.status),
        batch.map((r) => REFUNDED_STATUSES.has(r.status)),
        batch[0]!.timezone,
        budgetAtSend(deadline),
        this.options.now?.() ?? null,
      ],
      // The slower bound (max(2000, 4 x QUOTA_DB_TIMEOUT_MS)) is never shorter than the record
      // budget: the statement is not given up on while the database may still commit it.
      { name: 'command_record_executions', fast: false },
      deadline,
    );
  }
}

/**
 * The distinct (user, command type) pairs of a batch in lock order (one comparison, of UTF-16
 * code units, on every replica), and each item's index (from 1) into them.
 */
function usagePairs(batch: readonly { userId: string; commandType: string }[]): {
  users: string[];
  types: string[];
  counter: number[];
} {
  const distinct = new Map<string, { userId: string; commandType: string }>();
  for (const item of batch) distinct.set(usageId(item), item);
  const sorted = [...distinct.values()].sort(
    (a, b) => compare(a.userId, b.userId) || compare(a.commandType, b.commandType),
  );
  const index = new Map(sorted.map((p, i) => [usageId(p), i + 1]));
  return {
    users: sorted.map((p) => p.userId),
    types: sorted.map((p) => p.commandType),
    counter: batch.map((item) => index.get(usageId(item))!),
  };
}

/** A usage row's identity: PostgreSQL text never holds the NUL between. */
function usageId(item: { userId: string; commandType: string }): string {
  return `${item.userId}\u0000${item.commandType}`;
}
