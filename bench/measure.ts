import os from 'node:os';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { cpuWindow } from './cpuWindow.js';
import { LightClient, type UnaryMethod } from './LightClient.js';
import { watchPeakRss } from './peakRss.js';
import { CLIENT, CONCURRENCY, SECONDS } from './settings.js';

/** What one answered call decided. */
export interface Outcome {
  /** Admitted (a decision), or stored (an execution). */
  readonly allowed: boolean;
  readonly degraded: boolean;
}

/** One unary call, by whichever client the bench uses. */
export type Caller<Req, Res> = (request: Req) => Promise<Res>;

/** A generated grpc-js client method, called with metadata and a callback. */
export type RawUnary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  callback: (err: ServiceError | null, response: Res) => void,
) => unknown;

/**
 * The bench's client (CLIENT) for one method at `address`, opened once the server answers: the
 * light client on a connection of its own, or grpc-js through the generated client `raw`, with
 * the token and no deadline.
 */
export function caller<Req, Res>(
  address: string,
  method: UnaryMethod<Req, Res>,
  raw: RawUnary<Req, Res>,
  token: string | undefined,
): { call: Caller<Req, Res>; close: () => void } {
  if (CLIENT === 'http2') {
    let light = new LightClient(address, method, token);
    return {
      call: (req) => {
        // As real clients do, a connection the server closed (idle for QUOTA_IDLE_TIMEOUT_MS
        // between two scenarios) is opened again by the next call.
        if (light.closed) light = new LightClient(address, method, token);
        return light.call(req);
      },
      close: () => light.close(),
    };
  }
  const metadata = new Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return {
    call: (req) =>
      new Promise((resolve, reject) =>
        raw(req, metadata, (err, res) => (err ? reject(err) : resolve(res))),
      ),
    close: () => undefined,
  };
}

/** What one scenario measured: outcomes and the latency of every answered call. */
export class Tally {
  calls = 0;
  errors = 0;
  allowed = 0;
  denied = 0;
  degraded = 0;
  /** Why it ended before its time, if it did. */
  note = '';
  private readonly latencies: number[] = [];
  private readonly errorMessages = new Map<string, number>();
  private readonly started = performance.now();

  /** `allowedAs`: what an allowed outcome is called in the report ("allowed", "stored"). */
  constructor(
    readonly name: string,
    private readonly allowedAs = 'allowed',
  ) {}

  answered(res: Outcome, latencyMs: number): void {
    this.calls++;
    if (res.allowed) this.allowed++;
    else this.denied++;
    if (res.degraded) this.degraded++;
    this.latencies.push(latencyMs);
  }

  /** A call that failed; the first few distinct messages are kept for the report. */
  failed(err?: unknown): void {
    this.calls++;
    this.errors++;
    const message = err instanceof Error ? err.message : String(err);
    const seen = this.errorMessages.get(message);
    if (seen !== undefined || this.errorMessages.size < 3)
      this.errorMessages.set(message, (seen ?? 0) + 1);
  }

  /** The figures so far: calls a second since it started, and latency percentiles. */
  summary(): Summary {
    const seconds = (performance.now() - this.started) / 1000;
    const sorted = Float64Array.from(this.latencies).sort();
    const at = (p: number) =>
      sorted.length === 0
        ? undefined
        : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
    return {
      name: this.name,
      seconds,
      calls: this.calls,
      errors: this.errors,
      allowed: this.allowed,
      denied: this.denied,
      degraded: this.degraded,
      perSecond: (this.calls - this.errors) / seconds,
      p50Ms: at(50),
      p99Ms: at(99),
      maxMs: at(100),
      note: [this.note, ...[...this.errorMessages].map(([message, n]) => `${n} failed: ${message}`)]
        .filter((n) => n !== '')
        .join('; '),
    };
  }

  report(): Summary {
    const s = this.summary();
    const ms = (v: number | undefined) => (v === undefined ? 'n/a' : v.toFixed(2));
    const line = [
      this.name.padEnd(58),
      `${Math.round(s.perSecond).toString().padStart(7)} decisions/s`,
      `p50 ${ms(s.p50Ms)} ms`,
      `p99 ${ms(s.p99Ms)} ms`,
      `max ${ms(s.maxMs)} ms`,
      `(${s.calls} calls, ${s.errors} errors, ${s.allowed} ${this.allowedAs}, ${s.denied} denied, ${s.degraded} degraded${s.note ? `; ${s.note}` : ''})`,
    ];
    console.log(line.join('  '));
    return s;
  }
}

/** What a scenario measured, from its Tally. */
export interface Summary {
  readonly name: string;
  readonly seconds: number;
  readonly calls: number;
  readonly errors: number;
  readonly allowed: number;
  readonly denied: number;
  readonly degraded: number;
  /** Answered calls a second: every answered call is a decision, a failed one (shed…) none. */
  readonly perSecond: number;
  /** Latency percentiles of the answered calls, in ms; undefined when none was answered. */
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  readonly maxMs: number | undefined;
  readonly note: string;
}

/** A scenario's figures with the CPU time per answered call and the server's peak memory. */
export interface Measurement extends Summary {
  /**
   * CPU time of the server process per answered call (per decision), in µs; undefined when it
   * is not a local child.
   */
  readonly serverUs: number | undefined;
  /** Of the PostgreSQL processes (local ones only), in µs. */
  readonly databaseUs: number | undefined;
  /** Of this process: the load generator (and, for the peer, the rate limiter itself). */
  readonly clientUs: number;
  /** The server's peak resident memory over the scenario, in bytes. */
  readonly serverPeakRss: number | undefined;
  /**
   * Cores that processes other than the bench's kept busy meanwhile (from /proc/stat): the
   * machine is shared, and a busy one lowers every figure.
   */
  readonly otherCores: number | undefined;
}

/**
 * Runs a scenario and prints its figures, with the CPU time per answered call of the server (where it is
 * a local child), of the PostgreSQL processes below `databaseRoot` (the server's by default: the
 * database it embeds), and of this client; the server's peak resident memory; and how many cores
 * other processes kept busy meanwhile (the bench shares the machine: a busy machine lowers every
 * figure, and this says when it was).
 */
export async function measured(
  serverPid: number | undefined,
  run: () => Promise<Tally>,
  databaseRoot = serverPid,
): Promise<Measurement> {
  const window = await cpuWindow(serverPid, databaseRoot);
  const rss = serverPid === undefined ? undefined : await watchPeakRss(serverPid);
  const tally = await run();
  const serverPeakRss = await rss?.stop();
  const { serverMs, databaseMs, clientMs, cores: machine } = await window.end();
  const summary = tally.report();
  // Per decision: what failed calls cost is part of what the answered ones took.
  const perCall = (ms: number) => (ms * 1000) / Math.max(1, summary.calls - summary.errors);
  const measurement: Measurement = {
    ...summary,
    serverUs: serverMs === undefined ? undefined : perCall(serverMs),
    databaseUs: databaseMs === undefined ? undefined : perCall(databaseMs),
    clientUs: perCall(clientMs),
    serverPeakRss,
    otherCores: machine?.others,
  };
  const parts: string[] = [];
  const us = (v: number) => `${Math.round(v)} µs`;
  if (measurement.serverUs !== undefined) parts.push(`server ${us(measurement.serverUs)}`);
  if (measurement.databaseUs !== undefined) parts.push(`database ${us(measurement.databaseUs)}`);
  parts.push(`client ${us(measurement.clientUs)}`);
  const busy = machine
    ? `; machine: bench ${machine.ours.toFixed(2)}, other processes ${machine.others.toFixed(2)} of ${os.availableParallelism()} cores`
    : '';
  const memory =
    serverPeakRss === undefined ? '' : `; server peak RSS ${(serverPeakRss / 1e6).toFixed(1)} MB`;
  console.log(`${''.padEnd(58)}  CPU per answered call: ${parts.join(', ')}${memory}${busy}`);
  return measurement;
}

/**
 * CONCURRENCY workers, each calling `next(i)` (i counts calls across workers) and awaiting it
 * again as soon as it is answered, for `seconds`. A worker stops early when `next` has no call
 * left to make (undefined); the tally then notes it.
 */
export async function closedLoop(
  tally: Tally,
  next: (i: number) => Promise<Outcome> | undefined,
  seconds = SECONDS,
): Promise<Tally> {
  let i = 0;
  const until = performance.now() + seconds * 1000;
  let ranOut: number | undefined;
  const worker = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      const call = next(i++);
      if (!call) {
        ranOut ??= performance.now();
        return;
      }
      try {
        tally.answered(await call, performance.now() - t0);
      } catch (err) {
        tally.failed(err);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  if (ranOut !== undefined)
    tally.note = `work ran out after ${((ranOut - started) / 1000).toFixed(1)} s`;
  return tally;
}
