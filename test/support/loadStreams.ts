import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import type {
  LoadSnapshot,
  ReportLoadRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

/** A WatchLoad stream with every message received and how it ended. */
export interface Watched {
  readonly stream: ClientReadableStream<LoadSnapshot>;
  readonly messages: { at: number; snapshot: LoadSnapshot }[];
  /** Resolves with the error (CANCELLED, INVALID_ARGUMENT, ...) or null for a clean end. */
  readonly ended: Promise<ServiceError | null>;
}

export function watch(stream: ClientReadableStream<LoadSnapshot>): Watched {
  const messages: { at: number; snapshot: LoadSnapshot }[] = [];
  stream.on('data', (snapshot: LoadSnapshot) => messages.push({ at: Date.now(), snapshot }));
  const ended = new Promise<ServiceError | null>((resolve) => {
    stream.on('error', (err: ServiceError) => resolve(err));
    stream.on('status', (s: { code: number }) => {
      if (s.code === 0) resolve(null);
    });
  });
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
