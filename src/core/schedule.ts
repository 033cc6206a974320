// Placeholder: implemented in the schedule issue. The daemon calls runSchedule at cron fire time.
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';

export interface ScheduleOptions {
  files?: string[];
  backupId?: string;
}

export type ScheduleResult =
  | { kind: 'not-primary'; spider: string }
  | { kind: 'scheduled'; backupId: string; tasks: number };

export async function runSchedule(_deps: { config: AgentConfig; logger: Logger }, _opts: ScheduleOptions): Promise<ScheduleResult> {
  throw new Error('not implemented yet');
}
