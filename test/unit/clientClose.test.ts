import { describe, expect, it } from 'vitest';
import { connect, QuotaCancelledError } from '@quota-authority/client';

// After close(), every call fails at once with the client's typed error, whatever the method:
// grpc-js alone would throw a plain Error for a unary call and for a stream.

describe('a closed connection', () => {
  for (const batching of [true, false]) {
    it(`rejects unary calls with QuotaCancelledError (batching ${batching ? 'on' : 'off'})`, async () => {
      const conn = connect({ address: '127.0.0.1:1', batching: batching ? {} : false });
      conn.close();
      await expect(conn.quota.checkLimit({ userId: 'u' })).rejects.toBeInstanceOf(
        QuotaCancelledError,
      );
      await expect(
        conn.quota.recordExecution({ userId: 'u', commandType: 'shell', requestId: 'r-1' }),
      ).rejects.toBeInstanceOf(QuotaCancelledError);
      await expect(conn.admin.listTasks({})).rejects.toBeInstanceOf(QuotaCancelledError);
    });
  }

  it('ends a stream opened after close with QuotaCancelledError', async () => {
    const conn = connect({ address: '127.0.0.1:1' });
    conn.close();
    const read = async () => {
      for await (const _ of conn.quota.watchLoad({})) return 'message';
      return 'ended';
    };
    await expect(read()).rejects.toBeInstanceOf(QuotaCancelledError);
  });
});
