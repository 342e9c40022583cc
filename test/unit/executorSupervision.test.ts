import { afterEach, describe, expect, it, vi } from 'vitest';
import type { QuotaConnection } from '../../clients/typescript/src/connect.js';
import { QuotaExecutor } from '../../clients/typescript/src/executor/QuotaExecutor.js';
import { checkChildSpec } from '../../clients/typescript/src/executor/checkChildSpec.js';
import { runChildProcess } from '../../clients/typescript/src/executor/runChildProcess.js';
import {
  CheckCommandQuotaResponse,
  type RecordExecutionRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

// Whatever throws once a child runs (here the sampler's start, made to fail) must not leave it
// running unsupervised: its group is killed, it is reaped and measured, and the run is recorded
// as failed with that error, which run() throws.

const broken = vi.hoisted(() => ({ on: false, error: new Error('the sampler failed to start') }));

vi.mock('../../clients/typescript/src/executor/sampleChild.js', async (importOriginal) => {
  const original =
    await importOriginal<typeof import('../../clients/typescript/src/executor/sampleChild.js')>();
  return {
    sampleChild: (...args: Parameters<typeof original.sampleChild>) => {
      if (broken.on) throw broken.error;
      return original.sampleChild(...args);
    },
  };
});

afterEach(() => {
  broken.on = false;
});

const options = { signal: undefined, timeoutMs: undefined, sampleIntervalMs: 20 };

describe('a failure while a child runs', () => {
  it('kills its group with SIGKILL and gives a failed run with the error', async () => {
    const exitListeners = process.listenerCount('exit');
    broken.on = true;
    const t0 = performance.now();
    const executed = await runChildProcess(
      checkChildSpec({ command: 'sleep', args: ['30'] }),
      options,
    );
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(executed).toMatchObject({
      status: 'failed',
      exitCode: 137,
      outcome: { ok: false, error: broken.error },
    });
    // The group is no longer tracked: the exit hook is gone with it.
    expect(process.listenerCount('exit')).toBe(exitListeners);
  });

  it('is recorded failed by run(), which throws the error', async () => {
    const records: RecordExecutionRequest[] = [];
    const connection = {
      quota: {
        checkCommandQuota: async () =>
          CheckCommandQuotaResponse.fromPartial({ allowed: true, reservationId: 'r-1' }),
        recordExecution: async (request: RecordExecutionRequest) => {
          records.push(request);
          return { executionId: 'x-1' };
        },
      },
    } as unknown as QuotaConnection;
    const executor = new QuotaExecutor(connection, { reportLoad: false });
    broken.on = true;
    const err = await executor
      .run('u', 'shell', { command: 'sleep', args: ['30'] })
      .catch((x: unknown) => x);
    expect(err).toBe(broken.error);
    expect(records).toMatchObject([{ reservationId: 'r-1', status: 'failed', exitCode: 137 }]);
  });
});
