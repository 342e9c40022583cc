import os from 'node:os';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { LightClient, type UnaryMethod } from './LightClient.js';
import { machineCpu, treeCpu } from './processCpu.js';
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
    const light = new LightClient(address, method, token);
    return { call: (req) => light.call(req), close: () => light.close() };
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

  failed(): void {
    this.calls++;
    this.errors++;
  }

  report(): void {
    const seconds = (performance.now() - this.started) / 1000;
    const sorted = Float64Array.from(this.latencies).sort();
    const at = (p: number) =>
      sorted.length === 0
        ? 'n/a'
        : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(2);
    const line = [
      this.name.padEnd(50),
      `${Math.round(this.calls / seconds)
        .toString()
        .padStart(7)} decisions/s`,
      `p50 ${at(50)} ms`,
      `p99 ${at(99)} ms`,
      `max ${at(100)} ms`,
      `(${this.calls} calls, ${this.errors} errors, ${this.allowed} ${this.allowedAs}, ${this.denied} denied, ${this.degraded} degraded${this.note ? `; ${this.note}` : ''})`,
    ];
    console.log(line.join('  '));
  }
}

/**
 * Runs a scenario and prints its figures, with the CPU time per call of the server, of the
 * PostgreSQL processes it started, and of this client, where the server is a local child; and
 * how many cores other processes kept busy meanwhile (the bench shares the machine: a busy
 * machine lowers every figure, and this says when it was).
 */
export async function measured(
  serverPid: number | undefined,
  run: () => Promise<Tally>,
): Promise<void> {
  const machineBefore = await machineCpu();
  const before = serverPid === undefined ? undefined : await treeCpu(serverPid);
  const client = process.cpuUsage();
  const tally = await run();
  const clientMs = (({ user, system }) => (user + system) / 1000)(process.cpuUsage(client));
  const after = serverPid === undefined ? undefined : await treeCpu(serverPid);
  const machineAfter = await machineCpu();
  tally.report();
  const perCall = (ms: number) => `${Math.round((ms * 1000) / Math.max(1, tally.calls))} µs`;
  const parts: string[] = [];
  if (before && after) {
    parts.push(`server ${perCall(after.server - before.server)}`);
    // Nothing below the server for the floor or an external database: no figure, not 0 µs.
    const database = after.database - before.database;
    if (database > 0) parts.push(`database ${perCall(database)}`);
  }
  parts.push(`client ${perCall(clientMs)}`);
  let machine = '';
  if (before && after && machineBefore && machineAfter) {
    const total = machineAfter.total - machineBefore.total;
    const cores = os.availableParallelism();
    const ours = after.server - before.server + (after.database - before.database) + clientMs;
    const others = Math.max(0, machineAfter.busy - machineBefore.busy - ours);
    // total is summed over every core: cores × elapsed time.
    const busy = (ms: number) => ((ms / total) * cores).toFixed(2);
    machine = `; machine: bench ${busy(ours)}, other processes ${busy(others)} of ${cores} cores`;
  }
  console.log(`${''.padEnd(50)}  CPU per call: ${parts.join(', ')}${machine}`);
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
      } catch {
        tally.failed();
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  if (ranOut !== undefined)
    tally.note = `work ran out after ${((ranOut - started) / 1000).toFixed(1)} s`;
  return tally;
}
