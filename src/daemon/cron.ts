// The daily `schedule` trigger: a node-cron task on [schedule] cron, in the host's time zone (the
// one operators read the expression in). Overlapping fires are dropped by node-cron (noOverlap); a
// schedule that takes longer than the gap between fires is a misconfiguration worth a warning.
import { createTask, validateDetailed, type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';

export interface CronJob {
  readonly expression: string;
  nextRun(): Date | undefined;
  stop(): void;
}

/** Undefined when the expression is valid, else what is wrong with it. */
export function cronProblem(expression: string): string | undefined {
  let v: ReturnType<typeof validateDetailed>;
  try {
    v = validateDetailed(expression);
  } catch (err) {
    return (err as Error).message;
  }
  if (v.valid) return undefined;
  return (
    v.errors.map((e) => `${e.field}${e.value === undefined ? '' : ` "${e.value}"`}: ${e.message}`).join('; ') || 'invalid cron expression'
  );
}

export function startCron(expression: string, fire: (at: Date) => Promise<void>, logger: Logger): CronJob {
  const log = logger.child({ cron: expression });
  const task: ScheduledTask = createTask(expression, (ctx) => fire(ctx.date), {
    name: 'spiderbackup-schedule',
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
