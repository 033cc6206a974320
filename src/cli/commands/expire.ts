// `spiderbackup expire` (README "Repository"): the backups in the repository that the retention
// rule lets go, listed (a dry run) or, with --confirm, deleted, exactly that list.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import { formatBytes } from '../../format.js';
import type { ExpireEntry, RetentionPolicy } from '../../restore/expire.js';
import { print, renderJson, renderTable } from '../render/table.js';
import { configOption, formatOption, type Format, type GlobalOptions, type Register } from '../options.js';

function parseWhole(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 1_000_000) throw new InvalidArgumentError('must be a whole number');
  return Number(value);
}

export const register: Register = (program, setExit) => {
  program
    .command('expire')
    .description(
      'Deletes the backups in the [repository] that the retention rule lets go (a dry run unless --confirm): kept are the newest ' +
        'N complete ones and those younger than D days; the newest complete backup and running ones are never deleted.',
    )
    .addOption(new Option('--keep <n>', 'keep the newest n complete backups (default: [repository] retention_keep)').argParser(parseWhole))
    .addOption(
      new Option('--keep-days <d>', 'keep backups younger than d days (default: [repository] retention_days)').argParser(parseWhole),
    )
    .option('--confirm', 'delete them (without it: only list what would be deleted)', false)
    .addOption(configOption())
    .addOption(formatOption())
    .addHelpText(
      'after',
      '\nA restore point goes with its base backup; automatic points (auto-…) older than the oldest kept backup go too, and so do ' +
        'the archived binlog files every kept backup starts after (none a kept point needs). A --confirm refuses (exit 1, naming the holder) while a verify or restore ' +
        'holds a lock in the repository.',
    )
    .action(async (opts: { keep?: number; keepDays?: number; confirm: boolean; format: Format }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const config = (await import('../context.js')).agentConfigFor(g);
      setExit(await expireCommand(config, { files: g.config, ...opts }));
    });
};

async function expireCommand(
  config: AgentConfig,
  opts: { files?: string[] | undefined; keep?: number; keepDays?: number; confirm: boolean; format: Format },
): Promise<number> {
  const { UsageError } = await import('../../errors.js');
  const policy = retentionPolicy(config, opts);
  if (!config.repository) throw new UsageError('expire: no [repository] in the agent config: backups stay in BackupDir');
  if (policy.keep === undefined && policy.keepDays === undefined)
    throw new UsageError('expire: give --keep and/or --keep-days, or set [repository] retention_keep / retention_days');
  const [{ configuredRepository }, { runExpire }, { describeArchived }, { isAutoPoint }] = await Promise.all([
    import('../../repo/agent-repository.js'),
    import('../../restore/expire-run.js'),
    import('../../restore/expire-binlogs.js'),
    import('../../cluster/restore-point-model.js'),
  ]);
  const repo = await configuredRepository(config, opts.files);
  if (!repo) return 1;
  const r = await runExpire(config, repo, policy, { confirm: opts.confirm, files: opts.files });
  const listed = r.done ? r.done.deleted : r.plan.toDelete;
  const errors = r.done?.errors ?? [];
  const freed = listed.reduce((n, e) => n + e.bytes, 0);
  for (const n of r.plan.notes) process.stderr.write(`spiderbackup: expire: ${n}\n`);
  if (opts.format === 'json') {
    print(renderJson(listed.map((e) => ({ backupId: e.backupId, state: e.state, bytes: e.bytes }))));
  } else {
    if (listed.length > 0)
      print(
        renderTable(
          ['BackupId', 'State', 'Bytes', 'Started', 'RestorePoints'],
          listed.map((e) => row(e, isAutoPoint)),
        ),
      );
    const kept = r.plan.entries.filter((e) => e.keep);
    const newest = kept.find((e) => e.why === 'the newest complete backup');
    const keptLine = `${kept.length} kept${newest ? ` (newest complete: ${newest.backupId})` : ''}`;
    if (r.done) print(`deleted ${listed.length} backup(s), ${formatBytes(freed)} freed; ${keptLine}; judged by ${r.plan.judgedBy}`);
    else
      print(
        `would delete ${listed.length} backup(s), ${formatBytes(freed)} freed; ${keptLine}; judged by ${r.plan.judgedBy}` +
          `${listed.length > 0 ? ' (dry run: --confirm deletes them)' : ''}`,
      );
    const verb = r.done ? 'deleted' : 'would delete';
    // With their backups or by age: all of them older than the oldest kept backup.
    const autos = [...listed.flatMap((e) => e.points.filter(isAutoPoint)), ...r.plan.autoPoints];
    const points = r.done ? autos.filter((n) => r.done?.pointsDeleted.includes(n)) : autos;
    if (points.length > 0)
      print(`${verb} ${points.length} automatic restore point(s) older than the oldest kept backup: ${points.join(' ')}`);
    const binlogs = r.done ? r.done.binlogsDeleted : r.plan.binlogs.map((b) => describeArchived(b.file));
    if (binlogs.length > 0) {
      const bytes = r.plan.binlogs.reduce((n, b) => n + b.bytes, 0);
      print(`${verb} ${binlogs.length} archived binlog file(s) (${formatBytes(bytes)}) no kept backup or point needs:`);
      for (const b of binlogs) print(`  ${b}`);
    }
  }
  for (const e of errors) process.stderr.write(`spiderbackup: expire: ${e}\n`);
  return errors.length > 0 ? 1 : 0;
}

/** The automatic points of a backup are counted, not listed: there may be hundreds (the line below the table names them). */
function row(e: ExpireEntry, isAutoPoint: (name: string) => boolean): (string | number)[] {
  const autos = e.points.filter(isAutoPoint).length;
  const points = [...e.points.filter((n) => !isAutoPoint(n)), ...(autos > 0 ? [`+${autos} automatic`] : [])];
  return [e.backupId, e.state, e.bytes, e.startedAt.toISOString(), points.join(' ')];
}

/** The flags, else the [repository] retention settings (the flags replace them together). */
export function retentionPolicy(config: AgentConfig, opts: { keep?: number | undefined; keepDays?: number | undefined }): RetentionPolicy {
  if (opts.keep !== undefined || opts.keepDays !== undefined) return { keep: opts.keep, keepDays: opts.keepDays };
  return { keep: config.repository?.retentionKeep, keepDays: config.repository?.retentionDays };
}
