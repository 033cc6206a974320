// `spiderbackup restore [<backup-id>] (--to-point NAME | --to-time T) --target FILE` (issue 20):
// restores the whole cluster onto new instances through their agents (src/recovery/run-restore.ts),
// printing each task's phases as they change, then the time per phase, the GTID each shard reached
// and whether the new spider nodes are routed. `--dry-run` checks everything and writes nothing.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { formatBytes, formatDuration } from '../../format.js';
import type { RestoreEvent, RestoreOutcome } from '../../recovery/job.js';
import { formatOption, type Format, type GlobalOptions, type Register } from '../options.js';

const parseParallel = (v: string): number => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('must be a number of shards (1 or more)');
  return Number(v);
};

export const register: Register = (program, setExit) => {
  program
    .command('restore')
    .argument('[backup-id]', 'the global backup to restore (default: the newest usable for the point, as restore-plan chooses it)')
    .description(
      'Restore the whole cluster onto new instances (target file): the agents serving them load each shard and replay the ' +
        'binlog archive to the point; the new spider nodes are routed once every shard reached it.',
    )
    .addOption(new Option('--to-point <name>', 'the restore point to reach'))
    .addOption(new Option('--to-time <time>', 'the newest restore point at or before this time').conflicts('toPoint'))
    .requiredOption('--target <file>', 'target.json: the new instances (README "Restoring a cluster")')
    .option('--dry-run', 'check everything and print the plan per shard; write nothing')
    .option('--resume <restore-id>', 'redo the unfinished tasks of this restore (finished shards are kept)')
    .option('--parallel <n>', 'at most this many shards restored at once (default: all)', parseParallel)
    .addOption(formatOption())
    .addHelpText(
      'after',
      '\nExit code: 0 when every shard reached the point and the new spider nodes are routed (a dry run: when every check\n' +
        'passed); 1 otherwise (each problem named).',
    )
    .action(
      async (
        backupId: string | undefined,
        opts: { toPoint?: string; toTime?: string; target: string; dryRun?: boolean; resume?: string; parallel?: number; format: Format },
        cmd: Command,
      ) => {
        const g = cmd.optsWithGlobals<GlobalOptions>();
        const { UsageError } = await import('../../errors.js');
        if (opts.resume === undefined && opts.toPoint === undefined && opts.toTime === undefined)
          throw new UsageError('restore: give --to-point <name> or --to-time <time> (or --resume <restore-id>)');
        if (backupId !== undefined) (await import('../../task/backup-id.js')).validateBackupId(backupId, 'backup id');
        if (opts.toPoint !== undefined) (await import('../../task/backup-id.js')).validateBackupId(opts.toPoint, '--to-point');
        if (opts.toTime !== undefined) (await import('../../restore/point-choice.js')).clockMicros(opts.toTime);
        const config = (await import('../context.js')).agentConfigFor(g);
        const { runRestore } = await import('../../recovery/run-restore.js');
        const json = opts.format === 'json';
        const view = new ProgressView(json);
        const abort = new AbortController();
        const stop = () => abort.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        let outcome: RestoreOutcome;
        try {
          outcome = await runRestore(
            config,
            {
              backupId,
              pointName: opts.toPoint,
              toTime: opts.toTime,
              targetFile: opts.target,
              dryRun: opts.dryRun === true,
              resumeId: opts.resume,
              parallel: opts.parallel,
            },
            (e) => view.event(e),
            abort.signal,
          );
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
        setExit(view.finish(outcome));
      },
    );
};

/** The command's output: a line per event while it runs, then the summary (or one JSON document). */
export class ProgressView {
  readonly events: RestoreEvent[] = [];

  constructor(private readonly json: boolean) {}

  event(e: RestoreEvent): void {
    this.events.push(e);
    if (!this.json) process.stdout.write(`${eventLine(e)}\n`);
  }

  /** Prints the outcome; returns the exit code. */
  finish(o: RestoreOutcome): number {
    const ok = o.problems.length === 0 && (o.dryRun || (o.result?.outcome === 'done' && o.result.routed));
    const gtids = this.gtids();
    if (this.json) {
      for (const p of o.problems) process.stderr.write(`spiderbackup: restore: ${p}\n`);
      process.stdout.write(`${JSON.stringify({ ...o, gtids, ok }, null, 2)}\n`);
      return ok ? 0 : 1;
    }
    const out: string[] = [];
    if (o.plan.length > 0) out.push(o.dryRun ? 'plan:' : 'the plan:', ...o.plan.map((l) => `  ${l}`));
    for (const p of o.problems) out.push(`PROBLEM: ${p}`);
    if (o.dryRun)
      out.push(
        o.problems.length === 0
          ? 'dry run: every check passed; nothing was written'
          : `dry run: ${o.problems.length} problem(s); nothing was written`,
      );
    const r = o.result;
    if (r) {
      out.push(`restore ${r.restoreId}: ${r.outcome}${r.routed ? ', routed' : ', NOT routed'} in ${formatDuration(r.totalMs)}`);
      const phases = Object.entries(r.phaseMs).map(([p, ms]) => `${p} ${formatDuration(ms)}`);
      if (phases.length > 0) out.push(`  time per phase (summed over the tasks): ${phases.join(', ')}`);
      for (const [shard, gtid] of Object.entries(gtids)) out.push(`  shard ${shard}: reached GTID ${gtid}`);
      for (const f of r.failed) out.push(`  FAILED ${f.target.host}:${f.target.port}: ${f.error}`);
      if (r.outcome === 'partial')
        out.push(
          `  partial: some shards reached the point, nothing is routed through the new spider nodes; --resume ${r.restoreId} redoes the rest`,
        );
    }
    process.stdout.write(`${out.join('\n')}\n`);
    return ok ? 0 : 1;
  }

  /** The GTID each shard's master reached, from the done events. */
  gtids(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.events)
      if (e.kind === 'phase' && e.role === 'master' && e.phase === 'done' && e.gtid !== undefined) out[String(e.shard)] = e.gtid;
    return out;
  }
}

export function eventLine(e: RestoreEvent): string {
  switch (e.kind) {
    case 'planned':
      return `restore ${e.restoreId}: backup ${e.backupId} to restore point ${e.point}, ${e.tasks} task(s)`;
    case 'phase': {
      const who = `${e.target.host}:${e.target.port} ${e.role}${e.role === 'spider' ? '' : ` shard ${e.shard}`}`;
      const extra = e.error !== undefined ? `: ${e.error}` : e.gtid !== undefined ? ` at GTID ${e.gtid}` : '';
      return `${who}: ${e.phase} ${formatBytes(e.bytes)} ${formatDuration(e.ms)}${extra}`;
    }
    case 'routed':
      return `routed: ${e.spiders.map((s) => `${s.host}:${s.port}`).join(', ')} now route to the restored shards`;
    case 'note':
      return e.line;
  }
}
