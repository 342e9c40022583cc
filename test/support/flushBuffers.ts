import { expect } from 'vitest';
import type { QuotaConnection } from '@quota-authority/client';

/** The tasks that write what a replica buffers off the hot path. */
const BUFFER_TASKS = ['violations-flush', 'stats-flush', 'load-history-flush'];

/**
 * Writes now what the server behind `client` buffered (violations, decision statistics, load
 * history), through RunTask as an operator would: a check that "nothing was written" then sees
 * what a call wrote to a buffer too, and no flush of an earlier call's lands in the middle.
 */
export async function flushBuffers(client: QuotaConnection): Promise<void> {
  for (const name of BUFFER_TASKS) {
    const { ran, task } = await client.admin.runTask({ name });
    expect({ name, ran, error: task?.lastError }).toEqual({ name, ran: true, error: '' });
  }
}
