// The daily `schedule` trigger: a node-cron task on [schedule] cron, in the host's time zone (the
// one operators read the expression in). Overlapping fires are dropped by node-cron (noOverlap); a
// schedule that takes longer than the gap between fires is a misconfiguration worth a warning.
import { createRequire } from 'node:module';
import type * as NodeCron from 'node-cron';
import type { ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';

// node-cron is loaded when an expression is first checked or armed: a daemon without
// [schedule] cron (every host but the spider hosts) never loads it.
const require = createRequire(import.meta.url);
let nodeCron: typeof NodeCron | undefined;
const cron = (): typeof NodeCron => (nodeCron ??= require('node-cron') as typeof NodeCron);

export interface CronJob {
  readonly expression: string;
  nextRun(): Date | undefined;
  stop(): void;
}

/** Undefined when the expression is valid, else what is wrong with it. */
export function cronProblem(expression: string): string | undefined {
  let v: ReturnType<typeof NodeCron.validateDetailed>;
  try {
    v = cron().validateDetailed(expression);
  } catch (err) {
    return (err as Error).message;
  }
  if (v.valid) return undefined;
  return (
    v.errors.map((e) => `${e.field}${e.value === undefined ? '' : ` "${e.value}"`}: ${e.message}`).join('; ') || 'invalid cron expression'
  );
}

/** `name`: node-cron's name of the task ([drill] cron has its own). */
export function startCron(expression: string, fire: (at: Date) => Promise<void>, logger: Logger, name = 'spiderbackup-schedule'): CronJob {
  const log = logger.child({ cron: expression });
  const task: ScheduledTask = cron().createTask(expression, (ctx) => fire(ctx.date), {
    name,
    noOverlap: true,
    logger: {
      info: (m) => log.info(m),
      warn: (m) => log.warn(m),
      error: (m, err) =>
        log.error({ err: err?.message ?? (m instanceof Error ? m.message : undefined) }, m instanceof Error ? 'cron task failed' : m),
      debug: (m) => log.debug(m instanceof Error ? m.message : m),
    },
  });
  void Promise.resolve(task.start()).catch((err: unknown) => log.error({ err: (err as Error).message }, 'cannot start the cron task'));
  return {
    expression,
    nextRun: () => task.getNextRun() ?? undefined,
    stop: () => {
      void Promise.resolve(task.destroy()).catch(() => {});
    },
  };
}
