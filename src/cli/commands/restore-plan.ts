// `spiderbackup restore-plan [<backup-id>] (--to-point <name> | --to-time <T>)` (any spider node):
// per shard, the backup to restore and the binlogs to replay up to the point, each file named with
// where it is read (the binlog archive, the master). When the cluster cannot be reached and a
// repository is configured, the plan is made from the repository alone, and says so.
import { Option, type Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import type { PlanResult, ShardPlan } from '../../restore/plan.js';
import { describeFiles } from '../../restore/plan-model.js';
import { describeGap } from '../../restore/archive-plan.js';
import { formatDuration } from '../../format.js';
import { validateBackupId } from '../../task/backup-id.js';
import { reportUnread } from '../partial.js';
import { print, renderJson } from '../render/table.js';
import { configOption, formatOption, type Format, type GlobalOptions, type Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('restore-plan')
    .argument(
      '[backup-id]',
      'the global backup to restore (default: the newest whose every shard has a backup that ended before the point)',
    )
    .description(
      'On any spider node: per shard, which backup to restore and which binlogs to replay to reach a restore point; ' +
        'checks that those binlogs are still on the shard masters.',
    )
    .addOption(new Option('--to-point <name>', 'the restore point to reach'))
    .addOption(
      new Option(
        '--to-time <time>',
        'reach the newest restore point at or before this time (YYYY-MM-DD HH:MM:SS[.ffffff], the clock restore-point --list shows)',
      ).conflicts('toPoint'),
    )
    .addOption(configOption())
    .addOption(formatOption())
    .addHelpText('after', '\nExit code: 0 when the plan can be carried out, 1 when something it needs is missing (named in the output).')
    .action(async (backupId: string | undefined, opts: { toPoint?: string; toTime?: string; format: Format }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { UsageError } = await import('../../errors.js');
      if (opts.toPoint === undefined && opts.toTime === undefined)
        throw new UsageError('restore-plan: give --to-point <name> or --to-time <time>');
      const config = (await import('../context.js')).agentConfigFor(g);
      setExit(await planCommand(config, { files: g.config, backupId, pointName: opts.toPoint, toTime: opts.toTime, format: opts.format }));
    });
};

async function planCommand(
  config: AgentConfig,
  opts: {
    files?: string[] | undefined;
    backupId?: string | undefined;
    pointName?: string | undefined;
    toTime?: string | undefined;
    format: Format;
  },
): Promise<number> {
  if (opts.backupId !== undefined) validateBackupId(opts.backupId, 'backup id');
  if (opts.pointName !== undefined) validateBackupId(opts.pointName, '--to-point');
  if (opts.toTime !== undefined) (await import('../../restore/point-choice.js')).clockMicros(opts.toTime);
  const [{ restorePlan }, { withClusterSession, runOnPrimary }, { orFromRepository }] = await Promise.all([
    import('../../restore/plan.js'),
    import('../context.js'),
    import('../repository-fallback.js'),
  ]);
  const repo = await (await import('../../repo/agent-repository.js')).configuredRepository(config, opts.files);
  const req = { backupId: opts.backupId, pointName: opts.pointName, toTime: opts.toTime, repo };
  return orFromRepository(
    repo,
    () =>
      withClusterSession(
        config,
        opts.files,
        async (session) => printPlan(await restorePlan(config, session, req), opts),
        runOnPrimary('restore-plan'),
      ),
    async (r, why) => printPlan(await (await import('../../restore/repo-plan.js')).restorePlanFromRepository(r, req, why), opts),
  );
}

/** The plan as JSON: the archive's runs are described by `replay`, not dumped. */
export function planJson(res: PlanResult, ok: boolean): object {
  return { ...res, shards: res.shards.map(({ archiveRuns: _runs, ...s }) => s), ok };
}

/** The lines saying which backup and point were chosen, and where the plan was read; shared with verify. */
export function choiceLines(res: PlanResult): string[] {
  const out: string[] = [];
  if (res.fromRepository !== undefined)
    out.push(`${res.fromRepository}: the manifests, the restore points and the binlog archive were read from the repository`);
  if (res.backupChosen && res.backupId !== '')
    out.push(`backup ${res.backupId}: the newest in which every shard has a usable backup that ended before the point`);
  if (res.requestedTime !== undefined && res.point && res.pointBeforeMs !== undefined) {
    const gap = res.pointBeforeMs === 0 ? 'exactly at' : `${formatDuration(res.pointBeforeMs)} before`;
    out.push(
      `restore point ${res.point.name} (taken ${res.point.takenAt}) is the newest at or before ${res.requestedTime}: ${gap} it; the restore reaches the point, not the time`,
    );
  }
  return out;
}

function printPlan(res: PlanResult, opts: { pointName?: string | undefined; format: Format }): number {
  const blocked = res.problems.length > 0 || res.shards.some((s) => shardBlocked(s));
  const shown = `a plan of ${res.shards.length} shard(s)`;
  if (opts.format === 'json') {
    print(renderJson(planJson(res, !blocked)));
    return reportUnread('restore-plan', res.unread, shown) !== 0 || blocked ? 1 : 0;
  }
  const pointName = res.point?.name ?? opts.pointName ?? '?';
  print(
    `restore plan: backup ${res.backupId || '(none)'} rolled forward to restore point ${pointName}${res.point ? ` (${res.point.takenAt})` : ''}`,
  );
  for (const l of choiceLines(res)) print(l);
  for (const p of res.problems) print(`PROBLEM: ${p}`);
  for (const s of res.shards) {
    print(`${s.shard.serverName} ${s.shard.host}:${s.shard.port}:`);
    if (s.problem) print(`  PROBLEM: ${s.problem}`);
    if (s.backup) {
      const who =
        s.from === 'replica'
          ? `its replica's backup (${s.backup.serverName} ${s.backup.host}:${s.backup.port}; use the master position it recorded, --slave-info)`
          : "the master's backup";
      const from = s.repoKey !== undefined ? `the repository's ${s.repoKey}` : s.published?.dir;
      print(`  restore ${who}, taken ${s.backup.updatedAt}${s.published ? `, from ${from} (${s.published.tool})` : ''}`);
      if (s.repoProblem) print(`  PROBLEM: ${s.repoProblem}`);
      print(`  start position: ${startLine(s)}`);
    }
    if (s.start?.problem) print(`  PROBLEM: ${s.start.problem}`);
    const archived = s.archiveRuns !== undefined;
    print(
      `  replay with mariadb-binlog${s.backupGtid ? ` --start-position=${s.backupGtid}` : ''} --stop-position=${s.shard.gtid} (inclusive) from ${archived ? 'the binlog archive, then the master' : "the master's binlogs"}:`,
    );
    for (const w of s.archiveProblems ?? []) print(`  warning: ${w}`);
    if (archived) {
      for (const f of s.replay ?? [])
        print(
          f.source === 'archive'
            ? `    ${f.file} of ${f.host}:${f.port} from the binlog archive (${f.segments} segment(s), ${f.bytes} bytes), after ${f.startGtid}`
            : `    ${f.file} from the master, after ${f.startGtid}`,
        );
      if ((s.replay ?? []).length === 0 && !s.binlogError) print('    (none needed)');
      if (s.archiveGap)
        print(
          s.gapBlocks
            ? `  PROBLEM: the binlog archive has a ${describeGap(s.archiveGap)}; the master does not hold those events either`
            : `  the binlog archive stops short (${describeGap(s.archiveGap)}): the rest from the master`,
        );
    }
    if (s.binlogError) print(`  PROBLEM: binlogs not readable: ${s.binlogError}`);
    if (s.binlogs) {
      if (!archived) print(`    ${s.binlogs.files.length > 0 ? s.binlogs.files.join(' ') : '(none needed)'}`);
      if (s.binlogs.gone && !s.gapBlocks) {
        const what = s.purged
          ? `${describeFiles(s.purged)} ${s.purged.length === 1 ? 'was' : 'were'}`
          : `binlogs before ${s.binlogs.gone.oldestKept} were`;
        print(`  PROBLEM: ${what} purged from the master (oldest kept: ${s.binlogs.gone.oldestKept}): fetch them from the binlog archive`);
      }
      if (s.binlogs.notReached) print(`  PROBLEM: this shard's binlog has not reached ${s.shard.gtid} (reset or replaced master?)`);
    }
  }
  for (const a of res.afterReplay) print(`after the replay: ${a}`);
  return reportUnread('restore-plan', res.unread, shown) !== 0 || blocked ? 1 : 0;
}

/** Whether a shard's part of the plan cannot be carried out as printed. */
export function shardBlocked(s: ShardPlan): boolean {
  return (
    s.problem !== undefined ||
    s.repoProblem !== undefined ||
    s.start?.problem !== undefined ||
    s.binlogError !== undefined ||
    s.gapBlocks === true ||
    s.binlogs?.gone !== undefined ||
    s.binlogs?.notReached !== undefined
  );
}

function startLine(s: ShardPlan): string {
  if (s.noManifest)
    return "unknown: no manifest published (not a built-in runner's backup); read it from the backup (xtrabackup_binlog_info / the dump's header)";
  if (!s.start || s.start.problem) return 'unknown';
  const file = s.start.binlogFile ? ` (${s.from === 'replica' ? "master's " : ''}${s.start.binlogFile}:${s.start.binlogPos ?? '?'})` : '';
  return `after GTID ${s.backupGtid ?? '?'}${file}`;
}
