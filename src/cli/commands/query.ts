// `spiderbackup query` (any spider node): every task of the cluster, newest first.
import { Option, type Command } from 'commander';
import type { QueryResult } from '../../cluster/query.js';
import type { AgentConfig } from '../../config/agent.js';
import { reportUnread } from '../partial.js';
import { print, renderJson, renderTable } from '../render/table.js';
import { backupIdOption, configOption, formatOption, splitList, type Format, type GlobalOptions, type Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('query')
    .description('On any spider node: every task of the cluster, newest first (slaves read on the slaves).')
    .addOption(configOption())
    .addOption(backupIdOption('--BackupId <id>', 'only this backup id'))
    .addOption(backupIdOption('--backupId <id>', '').hideHelp())
    .addOption(
      new Option('--BackupStatus <statuses>', 'only these statuses, comma separated; `failed` matches `failed: timeout`').argParser(
        splitList,
      ),
    )
    .addOption(new Option('--backupStatus <statuses>').hideHelp().argParser(splitList))
    .addOption(formatOption())
    .action(
      async (
        opts: { BackupId?: string; backupId?: string; BackupStatus?: string[]; backupStatus?: string[]; format: Format },
        cmd: Command,
      ) => {
        const g = cmd.optsWithGlobals<GlobalOptions>();
        const config = (await import('../context.js')).agentConfigFor(g);
        setExit(
          await queryCommand(config, {
            files: g.config,
            backupId: opts.BackupId ?? opts.backupId,
            statuses: opts.BackupStatus ?? opts.backupStatus,
            format: opts.format,
          }),
        );
      },
    );
};

async function queryCommand(
  config: AgentConfig,
  opts: { files?: string[]; backupId?: string; statuses?: string[]; format: Format },
): Promise<number> {
  const [{ queryTasks }, { withClusterSession, runOnPrimary }] = await Promise.all([
    import('../../cluster/query.js'),
    import('../context.js'),
  ]);
  return withClusterSession(
    config,
    opts.files,
    async (session) => printTasks(await queryTasks(config, session, opts), opts.format),
    runOnPrimary('query'),
  );
}

function printTasks(res: QueryResult, format: Format): number {
  const rows = res.tasks.map((t) => ({
    BackupId: t.backupId,
    ServerName: t.serverName,
    BackupStatus: t.status,
    Host: t.host,
    Port: t.port,
    ShardValue: t.shardValue,
    CreatedAt: t.createdAt,
  }));
  if (format === 'json') print(renderJson(rows));
  else {
    print(
      renderTable(
        ['BackupId', 'ServerName', 'BackupStatus', 'Host', 'Port', 'ShardValue', 'CreatedAt'],
        rows.map((r) => Object.values(r)),
      ),
    );
    print(`${rows.length} rows`);
  }
  return reportUnread('query', res.errors, `${rows.length} rows`);
}
