import type { QuotaConnection } from '@quota-authority/client';
import type { TestDatabase } from './testDatabase.js';

/** Daily, weekly and monthly usage of `commandType` as GetQuotaStatus reads it. */
export async function usage(
  client: QuotaConnection,
  userId: string,
  commandType = 'shell',
): Promise<number[]> {
  const s = await client.quota.getQuotaStatus({ userId });
  const command = s.commands.find((c) => c.commandType === commandType);
  return command?.periods.map((p) => p.used) ?? [0, 0, 0];
}

/** The stored executions of a user, oldest first: their status and exit code. */
export async function executionRows(
  db: TestDatabase,
  userId: string,
): Promise<{ status: string; exit_code: number }[]> {
  const r = await db.query<{ status: string; exit_code: number }>(
    'SELECT status, exit_code FROM command_executions WHERE user_id = $1 ORDER BY recorded_at',
    [userId],
  );
  return r.rows;
}

/** Reservations (counted or not) held for a user. */
export async function reservationCount(db: TestDatabase, userId: string): Promise<number> {
  const r = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM command_reservations WHERE user_id = $1',
    [userId],
  );
  return r.rows[0]!.n;
}
