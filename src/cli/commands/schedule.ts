// `spiderbackup schedule [--wait]` (primary spider node): write a global backup's task set, and
// with --wait follow it to its end.
import type { Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import type { ClusterSession } from '../../cluster/session.js';
import type { Logger } from '../../log.js';
import { validateBackupId } from '../../task/backup-id.js';
import { print, renderTable } from '../render/table.js';
import { configOption, type GlobalOptions, type Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('schedule')
    .description('On the primary spider node: write the task set of a new global backup (every shard, slave and the spider master).')
    .addOption(configOption())
    .option('--backup-id <id>', 'use this backup id instead of a new UUID (1-40 of letters, digits, - _ .)')
    .option('--wait', 'wait until every task has ended; exit 1 unless all succeeded', false)
    .option('--no-restore-point', 'no restore point for this backup (by default one is taken once every task succeeded)')
    .addHelpText('after', '\nOn a node that is not the tdbctl primary it prints so and exits 0. Poll interval: [schedule] wait_interval.')
    .action(async (opts: { backupId?: string; wait: boolean; restorePoint: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { config, log } = await (await import('../context.js')).commandContext(g);
      setExit(
        await scheduleCommand(config, log.logger, {
          files: g.config,
          backupId: opts.backupId,
          wait: opts.wait,
          restorePoint: opts.restorePoint,
        }),
      );
      log.flush();
    });
};

async function scheduleCommand(
  config: AgentConfig,
  logger: Logger,
  opts: { files?: string[]; backupId?: string; wait: boolean; restorePoint: boolean },
): Promise<number> {
  const backupId = opts.backupId === undefined ? undefined : validateBackupId(opts.backupId);
  const { withClusterSession } = await import('../context.js');
  // --wait reads through the spider session the schedule wrote through (its connections to the shards are open).
  return withClusterSession(config, opts.files, (session) => scheduleAndWait(config, logger, session, { ...opts, backupId }));
}

async function scheduleAndWait(
  config: AgentConfig,
  logger: Logger,
  session: ClusterSession,
  opts: { backupId?: string | undefined; wait: boolean; restorePoint: boolean },
): Promise<number> {
  const [{ runSchedule }, { progressLine, unsuccessful, waitForBackup }] = await Promise.all([
    import('../../cluster/schedule.js'),
    import('../../cluster/wait.js'),
  ]);
  const res = await runSchedule({ config, logger }, session, { backupId: opts.backupId });
  for (const t of res.createdTables) print(`created infodba_schema.global_backup on ${t}`);
  print(
    `scheduled backup id ${res.backupId}: ${res.tasks} tasks (1 spider, ${res.set.masters.length} shard masters, ` +
      `${res.tasks - 1 - res.set.masters.length} slaves)`,
  );
  if (!opts.restorePoint) {
    const { recordOptOut } = await import('../../cluster/restore-point.js');
    await recordOptOut(session.spider, res.set.masters, res.backupId);
    print(`backup id ${res.backupId}: no restore point will be taken (--no-restore-point)`);
  }
  if (!opts.wait) return 0;
  const result = await waitForBackup(
    {
      config,
      logger,
      onRound: (r) => {
        print(`[${new Date().toISOString()}] ${res.backupId}: ${progressLine(r)}`);
        for (const v of r.views) if (v.problem) print(`  ${v.task.serverName} ${v.task.host}:${v.task.port}: ${v.problem}`);
        for (const e of r.errors) print(`  poll error: ${e}`);
      },
    },
    session,
    res.set,
    res.backupId,
  );
  if (result.ok) {
    print(`backup id ${res.backupId}: every task succeeded`);
    if (!config.schedule.restorePoints) return 0;
    const { describeBackupPoint, ensureBackupRestorePoint } = await import('../../cluster/backup-restore-point.js');
    // The spider master's agent takes it too when it sees the backup complete; the second finds it taken.
    const point = await ensureBackupRestorePoint({ config, logger }, session, res.backupId);
    print(describeBackupPoint(res.backupId, point));
    return 0;
  }
  const why = {
    finished: 'finished with failures',
    'too-many-failed-polls': 'gave up after too many failed polls',
    timeout: 'gave up after 48 h',
    hopeless: 'gave up: the tasks left can no longer finish',
  }[result.reason];
  print(`backup id ${res.backupId}: ${why}; tasks not successful:`);
  print(
    renderTable(
      ['ServerName', 'Host', 'Port', 'ShardValue', 'BackupStatus', 'Why'],
      unsuccessful(result.last).map((v) => [
        v.task.serverName,
        v.task.host,
        v.task.port,
        v.task.shardValue,
        v.row?.status ?? 'unknown (not readable)',
        v.hopeless ?? v.problem ?? '',
      ]),
    ),
  );
  return 1;
}
