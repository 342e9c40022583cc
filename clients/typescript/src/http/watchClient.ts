import type { IncomingMessage, ServerResponse } from 'node:http';

/** Tells when the HTTP client went away before its answer: there is then no one to answer. */
export interface ClientWatch {
  /** Aborted once the connection closed before the response was finished. */
  readonly signal: AbortSignal;
  /** Stops watching (the listener on `res` is removed). */
  release(): void;
}

export function watchClient(req: IncomingMessage, res: ServerResponse): ClientWatch {
  const gone = new AbortController();
  const abort = (): void => gone.abort(new Error('the HTTP client closed the connection'));
  // 'close' before the response finished: the socket closed under it.
  const onClose = (): void => {
    if (!res.writableFinished) abort();
  };
  if (res.destroyed || req.socket?.destroyed) abort();
  else res.once('close', onClose);
  return { signal: gone.signal, release: () => res.off('close', onClose) };
}
