// QuotaExecutor: runs users' commands under their command quotas and reports the host's load.
export { QuotaExecutor } from './QuotaExecutor.js';
export type { ExecutorOptions } from './ExecutorOptions.js';
export type { ExecutionContext, ExecutorFunction, RunOptions } from './RunOptions.js';
export type { ChildOutcome, ChildProcessSpec } from './ChildProcessSpec.js';
export type {
  CpuSource,
  ExecutionMeasurements,
  ExecutionStatus,
  FunctionRunResult,
  RunResult,
} from './RunResult.js';
export type { PeriodName, PeriodQuota } from './PeriodQuota.js';
export { CommandDeniedError } from './CommandDeniedError.js';
export { QuotaExceededError } from './QuotaExceededError.js';
export { SystemOverloadedError } from './SystemOverloadedError.js';
export { QuotaDecisionUnavailableError } from './QuotaDecisionUnavailableError.js';
export { loadSamplerStatus, type LoadSamplerStatus } from './hostLoadSampler.js';
