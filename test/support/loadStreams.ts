import type { QuotaCallError, QuotaStream } from '@quota-authority/client';
import type {
  LoadSnapshot,
  ReportLoadRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

/** A WatchLoad stream with every message received and how it ended. */
export interface Watched {
  readonly stream: QuotaStream<LoadSnapshot>;
  readonly messages: { at: number; snapshot: LoadSnapshot }[];
  /** Resolves with the typed error (INVALID_ARGUMENT, ...) or null for a clean end or cancel(). */
  readonly ended: Promise<QuotaCallError | null>;
}

export function watch(stream: QuotaStream<LoadSnapshot>): Watched {
  const messages: { at: number; snapshot: LoadSnapshot }[] = [];
  const ended = (async () => {
    try {
      for await (const snapshot of stream) messages.push({ at: Date.now(), snapshot });
      return null;
    } catch (err) {
      return err as QuotaCallError;
    }
  })();
  return { stream, messages, ended };
}

export const report = (r: Partial<ReportLoadRequest> & { host: string }): ReportLoadRequest => ({
  cpuPercent: 10,
  memoryPercent: 10,
  diskPercent: 10,
  diskReadBytesPerSec: 0,
  diskWriteBytesPerSec: 0,
  netRxBytesPerSec: 0,
  netTxBytesPerSec: 0,
  loadAvg1m: 0.5,
  ...r,
});
