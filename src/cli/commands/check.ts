// `spiderbackup check`: the per-host step, waiting for each backup as the old tool did.
import type { Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import type { CheckReport } from '../../check/check.js';
import type { backupArgv } from '../../host/start-task.js';
import { print, renderJson, renderTable } from '../render/table.js';
import { backupIdOption, configOption, formatOption, type Format, type GlobalOptions, type Register } from '../options.js';

type ArgvOf = typeof backupArgv;

export const register: Register = (program, setExit) => {
  program
    .command('check')
    .description("Per-host step: housekeeping of this host's tasks, then run the earliest waiting backup id, instance by instance.")
    .option('--run', 'start the backups (without it: only list what would run, change nothing)', false)
    .addOption(backupIdOption('--backup-id <id>', 'run the tasks of this backup id instead of the earliest one'))
    .addOption(configOption())
    .addOption(formatOption())
    .addHelpText(
      'after',
      '\nExit code: 0 when every backup run succeeded, 1 when any failed or an instance/config could not be used, 2 on bad usage.',
    )
    .action(async (opts: { run: boolean; backupId?: string; format: Format }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { config, log } = await (await import('../context.js')).commandContext(g);
      const [{ runCheck }, { backupArgv }] = await Promise.all([import('../../check/check.js'), import('../../host/start-task.js')]);
      const report = await runCheck(
        { config, logger: log.logger, logFd: 2 },
        { run: opts.run, backupId: opts.backupId, files: g.config, waitForBackups: true },
      );
      print(
        opts.format === 'json' ? renderJson(toJson(config, report, opts.run, backupArgv)) : toText(config, report, opts.run, backupArgv),
      );
      setExit(report.ok ? 0 : 1);
      log.flush();
    });
};

function planned(config: AgentConfig, report: CheckReport, argvOf: ArgvOf) {
  if (report.pick.kind !== 'run') return [];
  return report.pick.tasks.map((t) => {
    const inst = report.instances.find((r) => r.instance.port === t.port)?.instance;
    return { ...t, argv: inst ? argvOf(config, inst, t) : [] };
  });
}

function toJson(config: AgentConfig, report: CheckReport, run: boolean, argvOf: ArgvOf) {
  return {
    errors: [
      ...report.configErrors.map((e) => ({ file: e.file, error: e.message })),
      ...report.instances.filter((r) => r.error).map((r) => ({ file: r.instance.file, port: r.instance.port, error: r.error })),
    ],
    running: report.pick.kind === 'busy' ? report.pick.running.map(taskJson) : [],
    ...(report.hostBusy !== undefined ? { hostBusy: report.hostBusy } : {}),
    ...(report.clusterPause !== undefined ? { clusterPause: report.clusterPause } : {}),
    [run ? 'ran' : 'wouldRun']: run
      ? report.outcomes.map((o) => ({ ...taskJson(o.task), result: o.status, ...(o.note ? { note: o.note } : {}) }))
      : planned(config, report, argvOf).map((t) => ({ ...taskJson(t), command: t.argv })),
  };
}

function taskJson(t: {
  backupId: string;
  serverName: string;
  host: string;
  port: number;
  shardValue: number;
  status: string;
  taskPid: number;
  createdAt: string;
}) {
  return {
    BackupId: t.backupId,
    ServerName: t.serverName,
    Host: t.host,
    Port: t.port,
    ShardValue: t.shardValue,
    BackupStatus: t.status,
    TaskPid: t.taskPid,
    CreatedAt: t.createdAt,
  };
}

function toText(config: AgentConfig, report: CheckReport, run: boolean, argvOf: ArgvOf): string {
  const out: string[] = [];
  for (const e of report.configErrors) out.push(`error: ${e.message}`);
  for (const n of report.notServed) out.push(`note: ${n}`);
  for (const r of report.instances) if (r.error) out.push(`error: ${r.error}`);
  const unread = report.instances.filter((r) => r.error !== undefined);
  const cp = report.clusterPause;
  if (cp) out.push(`The cluster is paused until ${cp.until} (${cp.reason || 'no reason given'}): nothing new starts.`);
  if (run && cp && report.pick.kind === 'run') {
    out.push('Nothing started: see `spiderbackup resume --cluster` on a spider node.');
  } else if (run && report.hostBusy !== undefined && report.pick.kind === 'run') {
    out.push(`Nothing started: ${report.hostBusy}.`);
  } else if (report.pick.kind === 'busy') {
    out.push('A backup of this host is running; nothing new starts until it ends:');
    out.push(
      renderTable(
        ['Port', 'BackupId', 'BackupStatus', 'TaskPid'],
        report.pick.running.map((t) => [t.port, t.backupId, t.status, t.taskPid]),
      ),
    );
  } else if (report.pick.kind === 'idle' && report.instances.length === 0 && report.configErrors.length === 0) {
    out.push(`No instance found: no dbbackup.<port>.ini in ${config.agent.configDir} (set [agent] config_dir, or give files with -c).`);
  } else if (report.pick.kind === 'idle' && unread.length > 0) {
    // Not "nothing waiting": what the unread instances hold is not known.
    out.push(
      `No backup task waiting on the instances read; not read: ${unread.map((r) => `port ${r.instance.port} (${r.instance.file})`).join(', ')}.`,
    );
  } else if (report.pick.kind === 'idle') {
    out.push('No backup task waiting for this host.');
  } else if (!run) {
    out.push(`Would back up, one after another (backup id ${report.pick.backupId}):`);
    out.push(
      renderTable(
        ['Port', 'ServerName', 'BackupStatus', 'ShardValue', 'CreatedAt', 'Command'],
        planned(config, report, argvOf).map((t) => [t.port, t.serverName, t.status, t.shardValue, t.createdAt, t.argv.join(' ')]),
      ),
    );
    if (report.hostBusy !== undefined) out.push(`Not now: ${report.hostBusy}.`);
  } else {
    out.push(`Backup id ${report.pick.backupId}:`);
    out.push(
      renderTable(
        ['Port', 'ServerName', 'Result'],
        report.outcomes.map((o) => [o.task.port, o.task.serverName, o.note && o.note !== 'skipped' ? `${o.status}: ${o.note}` : o.status]),
      ),
    );
  }
  return out.join('\n');
}
