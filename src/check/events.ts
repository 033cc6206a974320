// What the agent tells the world happened: one typed emitter per agent (the daemon keeps one for
// its life; a CLI run makes its own), passed in explicitly. The steps (check, housekeeping, the
// tick) emit; metrics and logs subscribe. Nothing here is global.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { TaskKey, TaskRow } from '../task/task.js';

export interface StartedEvent {
  task: TaskRow;
  /** The supervisor's pid (the row's TaskPid). */
  pid: number;
  /** Resolves with the supervisor's exit code. */
  done: Promise<number | null>;
}

export interface FinishedEvent {
  /** The row as read once it was final. */
  task: TaskRow;
  outcome: 'success' | 'failed';
  /** Instance role, for labels. */
  role: string;
  /** From the supervisor's record, when the agent saw it: seconds the backup ran, bytes it wrote. */
  durationS: number | undefined;
  bytes: number | undefined;
}

export type KillReason = 'quit' | 'timeout' | 'orphaned';

export interface AgentEventMap {
  /** A backup was handed to its supervisor. */
  started: [StartedEvent];
  /** A task seen unfinished before is now success or failed (whoever wrote it). */
  finished: [FinishedEvent];
  /** Housekeeping killed the process tree of a backup. */
  killed: [{ task: TaskKey; reason: KillReason }];
  /** A task nobody started within 12 h was set to quit. */
  expired: [{ task: TaskKey }];
  /** Housekeeping marked a running task failed: nothing of it runs on this host. */
  failed: [{ task: TaskKey; status: string }];
  /** A row overwritten while its backup ran here was restored to running. */
  repaired: [{ task: TaskKey }];
  /** Rows over the retention age were deleted. */
  deleted: [{ port: number; count: number }];
  /** A restore task's worker was started on this host (daemon/restore-watch.ts). */
  restoreStarted: [{ restoreId: string; host: string; port: number; attempt: number; pid: number }];
  /** A restore task's worker died before it ended: the task was reported failed. */
  restoreLost: [{ restoreId: string; host: string; port: number; attempt: number; why: string }];
  /** Something that may repeat every round (an instance down, a drop-in broken, a privilege missing). */
  problem: [{ key: string; fields: Record<string, unknown>; msg: string }];
}

export type AgentEvents = EventEmitter<AgentEventMap>;

export function createAgentEvents(): AgentEvents {
  return new EventEmitter<AgentEventMap>();
}

/** The plain subscriber of a one-shot run (CLI): every problem is logged when it happens. */
export function logEveryProblem(events: AgentEvents, logger: Logger): AgentEvents {
  events.on('problem', ({ fields, msg }) => logger.error(fields, msg));
  return events;
}
