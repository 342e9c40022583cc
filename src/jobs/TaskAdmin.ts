import { validateText } from '../core/validateText.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { JobStatus } from './Job.js';
import type { JobRegistry } from './JobRegistry.js';
import type { DeletedRows, RetentionDays } from './ports.js';
import type { RetentionCleanup } from './RetentionCleanup.js';

/** What the AdminService task methods do: this replica's tasks, run now, cleanup now. */
export class TaskAdmin {
  constructor(
    private readonly registry: JobRegistry,
    private readonly retention: RetentionCleanup,
    /** Host name of this replica. */
    readonly replica: string,
  ) {}

  /** This replica's tasks, by name. */
  list(): { replica: string; tasks: JobStatus[] } {
    return { replica: this.replica, tasks: this.registry.list() };
  }

  /**
   * Runs task `name` now and resolves when it has ended (a failure included: it is in the
   * status); `ran` is false when another replica held a cluster-wide task's lock.
   */
  async run(name: string): Promise<{ ran: boolean; task: JobStatus }> {
    if (name === '') throw new ValidationError('name', 'must not be empty');
    validateText(name, 'name', 256);
    const outcome = await this.registry.runNow(name);
    if (!outcome) throw new NotFoundError('task', name);
    return { ran: outcome.ran, task: outcome.status };
  }

  /** See RetentionCleanup.runNow. */
  cleanup(overrides: Partial<RetentionDays>): Promise<DeletedRows> {
    return this.retention.runNow(overrides);
  }
}
