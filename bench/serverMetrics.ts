import { status } from '@grpc/grpc-js';

/** What the service's Prometheus endpoint said at one scrape. */
export interface ServerMetrics {
  /**
   * Calls finished with a status other than OK (quota_grpc_calls_total), by method and status
   * name (`CheckLimit RESOURCE_EXHAUSTED`): what the light client, which does not decode
   * trailers, cannot name.
   */
  readonly failedCalls: ReadonlyMap<string, number>;
  /** V8's heap in use, in bytes (quota_nodejs_heap_size_used_bytes). */
  readonly heapUsed: number | undefined;
}

const LINE = /^(\w+)(?:\{([^}]*)\})? (\S+)$/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/** Scrapes the service's metrics on 127.0.0.1:`port`; undefined when it does not answer. */
export async function scrapeServerMetrics(port: number): Promise<ServerMetrics | undefined> {
  let body: string;
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) return undefined;
    body = await res.text();
  } catch {
    return undefined;
  }
  const failedCalls = new Map<string, number>();
  let heapUsed: number | undefined;
  for (const line of body.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, name, labels = '', value] = m;
    if (name === 'quota_nodejs_heap_size_used_bytes') heapUsed = Number(value);
    if (name !== 'quota_grpc_calls_total') continue;
    const l = Object.fromEntries([...labels.matchAll(LABEL)].map(([, k, v]) => [k, v]));
    const code = Number(l['code']);
    if (code === status.OK) continue;
    const method = (l['method'] ?? '').split('/').at(-1);
    failedCalls.set(`${method} ${status[code] ?? l['code']}`, Number(value));
  }
  return { failedCalls, heapUsed };
}

/** The calls that failed between two scrapes, by method and status, those with none left out. */
export function failedSince(
  before: ServerMetrics | undefined,
  after: ServerMetrics | undefined,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [kind, n] of after?.failedCalls ?? []) {
    const d = n - (before?.failedCalls.get(kind) ?? 0);
    if (d > 0) out.set(kind, d);
  }
  return out;
}
