import type { AgentConfig } from '../config/agent.js';
import { runCheck, type CheckReport } from '../core/check.js';
import { backupArgv } from '../core/start-task.js';
import type { Logger } from '../log.js';
import { print, renderJson, renderTable, type Format } from './output.js';

export interface CheckCommandOptions {
  run: boolean;
  backupId?: string;
  files?: string[];
  format: Format;
}

/** `spiderbackup check`: the per-host step, waiting for each backup as the old tool did. */
export async function checkCommand(config: AgentConfig, logger: Logger, opts: CheckCommandOptions): Promise<number> {
  const report = await runCheck(
    { config, logger, logFd: 2 },
    { run: opts.run, backupId: opts.backupId, files: opts.files, waitForBackups: true },
  );
  print(opts.format === 'json' ? renderJson(toJson(config, report, opts.run)) : toText(config, report, opts.run));
  return report.ok ? 0 : 1;
}

function planned(config: AgentConfig, report: CheckReport) {
  if (report.pick.kind !== 'run') return [];
  return report.pick.tasks.map((t) => {
    const inst = report.instances.find((r) => r.instance.port === t.port)?.instance;
    return { ...t, argv: inst ? backupArgv(config, inst, t) : [] };
  });
}

function toJson(config: AgentConfig, report: CheckReport, run: boolean) {
  return {
    errors: [
      ...report.configErrors.map((e) => ({ file: e.file, error: e.message })),
      ...report.instances.filter((r) => r.error).map((r) => ({ file: r.instance.file, port: r.instance.port, error: r.error })),
    ],
    running: report.pick.kind === 'busy' ? report.pick.running.map(taskJson) : [],
    ...(report.hostBusy !== undefined ? { hostBusy: report.hostBusy } : {}),
    [run ? 'ran' : 'wouldRun']: run
      ? report.outcomes.map((o) => ({ ...taskJson(o.task), result: o.status, ...(o.note ? { note: o.note } : {}) }))
      : planned(config, report).map((t) => ({ ...taskJson(t), command: t.argv })),
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

function toText(config: AgentConfig, report: CheckReport, run: boolean): string {
  const out: string[] = [];
  for (const e of report.configErrors) out.push(`error: ${e.message}`);
  for (const r of report.instances) if (r.error) out.push(`error: ${r.error}`);
  if (run && report.hostBusy !== undefined && report.pick.kind === 'run') {
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
  } else if (report.pick.kind === 'idle') {
    out.push('No backup task waiting for this host.');
  } else if (!run) {
    out.push(`Would back up, one after another (backup id ${report.pick.backupId}):`);
    out.push(
      renderTable(
        ['Port', 'ServerName', 'BackupStatus', 'ShardValue', 'CreatedAt', 'Command'],
        planned(config, report).map((t) => [t.port, t.serverName, t.status, t.shardValue, t.createdAt, t.argv.join(' ')]),
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
