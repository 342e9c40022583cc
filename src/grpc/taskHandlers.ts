import type { TaskAdmin } from '../jobs/TaskAdmin.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { handleUnary } from './handleUnary.js';
import type { HandlerDeps } from './HandlerDeps.js';
import { ADMIN_SERVICE } from './services.js';
import {
  deletedRowsToProto,
  retentionOverridesFromProto,
  taskStatusToProto,
} from './taskMapping.js';

/** The background-task methods of AdminService. */
export interface TaskHandlers {
  readonly admin: Pick<AdminServiceServer, 'listTasks' | 'runTask' | 'cleanupOldData'>;
}

/** Each handler maps the request, calls one domain function, maps the result. */
export function taskHandlers(tasks: TaskAdmin, deps: HandlerDeps): TaskHandlers {
  return {
    admin: {
      listTasks: handleUnary(ADMIN_SERVICE, 'ListTasks', deps, async () => {
        const { replica, tasks: list } = tasks.list();
        return { replica, tasks: list.map(taskStatusToProto) };
      }),
      runTask: handleUnary(ADMIN_SERVICE, 'RunTask', deps, async (req) => {
        const { ran, task } = await tasks.run(req.name);
        return { ran, task: taskStatusToProto(task) };
      }),
      cleanupOldData: handleUnary(ADMIN_SERVICE, 'CleanupOldData', deps, async (req) => ({
        deleted: deletedRowsToProto(await tasks.cleanup(retentionOverridesFromProto(req))),
      })),
    },
  };
}
