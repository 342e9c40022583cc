import { groupAlive, signalGroup, untrackGroup } from './childGroups.js';

/**
 * Stops a child's process group (tracked by childGroups from its spawn) on a timeout or an abort:
 * `killSignal` to the whole group, then SIGKILL after `killGraceMs`; and untracks the group once
 * nothing of it is left to stop.
 */
export class GroupStopper {
  private why: 'timeout' | 'abort' | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private killed = false;
  private leaderExited = false;

  constructor(
    private readonly pid: number,
    private readonly killSignal: NodeJS.Signals,
    private readonly killGraceMs: number,
  ) {}

  /** Why it was stopped; undefined when it was not. */
  get stoppedFor(): 'timeout' | 'abort' | undefined {
    return this.why;
  }

  stop(why: 'timeout' | 'abort'): void {
    if (this.why || this.killed || this.leaderExited) return;
    this.why = why;
    signalGroup(this.pid, this.killSignal);
    this.graceTimer = setTimeout(() => this.kill(), this.killGraceMs);
    // It may outlive the run (see exited): no reason to keep the process alive.
    this.graceTimer.unref();
  }

  /** SIGKILL to the group, now. */
  kill(): void {
    clearTimeout(this.graceTimer);
    this.killed = true;
    signalGroup(this.pid, 'SIGKILL');
    if (this.leaderExited) untrackGroup(this.pid);
  }

  /** Call once the child (the group's leader) has exited and been reaped. */
  exited(): void {
    this.leaderExited = true;
    // Stopped: its descendants got killSignal with it, and those still there keep the rest of
    // killGraceMs before SIGKILL, the group tracked until then (for the exit hook). The number
    // names no other group while this one has members (no pid is reused while a group of it
    // lives); once it is empty, another group of that number within the grace is the tiny risk.
    if (this.why && !this.killed && groupAlive(this.pid)) return;
    clearTimeout(this.graceTimer);
    // Not stopped: what a child that ended by itself left running is not the run's to kill.
    untrackGroup(this.pid);
  }
}
