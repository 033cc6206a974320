// `spiderbackup restore-plan <backup-id> --to-point <name>` (spider master): per shard, the backup
// to restore and the binlogs to replay up to the point.
import { Option, type Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import type { PlanResult, ShardPlan } from '../../restore/plan.js';
import { describeFiles } from '../../restore/plan-model.js';
import { validateBackupId } from '../../task/backup-id.js';
import { reportUnread } from '../partial.js';
import { print, renderJson } from '../render/table.js';
import { configOption, formatOption, type Format, type GlobalOptions, type Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('restore-plan')
    .argument('<backup-id>', 'the global backup to restore')
    .description(
      'On any spider node: per shard, which backup to restore and which binlogs to replay to reach a restore point; ' +
        'checks that those binlogs are still on the shard masters.',
    )
    .addOption(new Option('--to-point <name>', 'the restore point to reach').makeOptionMandatory())
    .addOption(configOption())
    .addOption(formatOption())
    .addHelpText('after', '\nExit code: 0 when the plan can be carried out, 1 when something it needs is missing (named in the output).')
    .action(async (backupId: string, opts: { toPoint: string; format: Format }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const config = (await import('../context.js')).agentConfigFor(g);
      setExit(await planCommand(config, { files: g.config, backupId, pointName: opts.toPoint, format: opts.format }));
    });
};

async function planCommand(
  config: AgentConfig,
  opts: { files?: string[] | undefined; backupId: string; pointName: string; format: Format },
): Promise<number> {
  validateBackupId(opts.backupId, 'backup id');
  validateBackupId(opts.pointName, '--to-point');
  const [{ restorePlan }, { withClusterSession, runOnPrimary }] = await Promise.all([
    import('../../restore/plan.js'),
    import('../context.js'),
  ]);
  const repo = await (await import('../../repo/agent-repository.js')).configuredRepository(config, opts.files);
  return withClusterSession(
    config,
    opts.files,
    async (session) => printPlan(await restorePlan(config, session, { backupId: opts.backupId, pointName: opts.pointName, repo }), opts),
    runOnPrimary('restore-plan'),
  );
}

function printPlan(res: PlanResult, opts: { pointName: string; format: Format }): number {
  const blocked = res.problems.length > 0 || res.shards.some((s) => shardBlocked(s));
  const shown = `a plan of ${res.shards.length} shard(s)`;
  if (opts.format === 'json') {
    print(renderJson({ ...res, ok: !blocked }));
    return reportUnread('restore-plan', res.unread, shown) !== 0 || blocked ? 1 : 0;
  }
  print(
    `restore plan: backup ${res.backupId} rolled forward to restore point ${opts.pointName}${res.point ? ` (${res.point.takenAt})` : ''}`,
  );
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
    print(
      `  replay with mariadb-binlog${s.backupGtid ? ` --start-position=${s.backupGtid}` : ''} --stop-position=${s.shard.gtid} (inclusive) from the master's binlogs:`,
    );
    if (s.binlogError) print(`  PROBLEM: binlogs not readable: ${s.binlogError}`);
    if (s.binlogs) {
      print(`    ${s.binlogs.files.length > 0 ? s.binlogs.files.join(' ') : '(none needed)'}`);
      if (s.binlogs.gone) {
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
