// The command line: every command, option and help text. Only commander and a few small modules
// are loaded here; each command loads what it needs when it runs (`await import`), so --help,
// --version and usage errors never load the database driver, the logger, the metrics or the tables.
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_AGENT_CONFIG } from '../config/defaults.js';
import { validateBackupId } from '../core/backup-id.js';
import { packageVersion } from '../version.js';
import type { GlobalOptions } from './context.js';
import { registerDaemonCommands } from './daemon-commands.js';

export const splitList = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== ''),
];

export function parseFormat(value: string): 'table' | 'json' {
  if (value !== 'table' && value !== 'json') throw new InvalidArgumentError('must be table or json');
  return value;
}

const configOption = () =>
  new Option(
    '-c, --config <files>',
    'instance config files, comma separated (default: every dbbackup.<port>.ini in [agent] config_dir)',
  ).argParser(splitList);

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('spiderbackup')
    .version(packageVersion())
    .description('Coordinates TenDB Cluster (Spider) global backups on this host.')
    .option('--agent-config <file>', `the agent's settings (INI); default ${DEFAULT_AGENT_CONFIG}, used only if it exists`)
    .option('--strict', 'unknown sections and keys in the agent settings are errors instead of warnings')
    .addOption(configOption())
    // Before any command is added: subcommands inherit it, so usage errors exit 2 everywhere.
    .exitOverride()
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });

  program
    .command('check')
    .description("Per-host step: housekeeping of this host's tasks, then run the earliest waiting backup id, instance by instance.")
    .option('--run', 'start the backups (without it: only list what would run, change nothing)', false)
    .addOption(
      new Option('--backup-id <id>', 'run the tasks of this backup id instead of the earliest one').argParser((v: string) =>
        validateBackupId(v),
      ),
    )
    .addOption(configOption())
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .addHelpText(
      'after',
      '\nExit code: 0 when every backup run succeeded, 1 when any failed or an instance/config could not be used, 2 on bad usage.',
    )
    .action(async (opts: { run: boolean; backupId?: string; format: 'table' | 'json' }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { config, log } = await (await import('./context.js')).commandContext(g);
      const { checkCommand } = await import('./check.js');
      setExit(await checkCommand(config, log.logger, { run: opts.run, backupId: opts.backupId, files: g.config, format: opts.format }));
      log.flush();
    });

  program
    .command('schedule')
    .description('On the primary spider node: write the task set of a new global backup (every shard, slave and the spider master).')
    .addOption(configOption())
    .option('--backup-id <id>', 'use this backup id instead of a new UUID (1-40 of letters, digits, - _ .)')
    .option('--wait', 'wait until every task has ended; exit 1 unless all succeeded', false)
    .addHelpText('after', '\nOn a node that is not the tdbctl primary it prints so and exits 0. Poll interval: [schedule] wait_interval.')
    .action(async (opts: { backupId?: string; wait: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { config, log } = await (await import('./context.js')).commandContext(g);
      const { scheduleCommand } = await import('./spider-master.js');
      setExit(await scheduleCommand(config, log.logger, { files: g.config, backupId: opts.backupId, wait: opts.wait }));
      log.flush();
    });

  program
    .command('query')
    .description('On the primary spider node: every task of the cluster, newest first (slaves read on the slaves).')
    .addOption(configOption())
    .addOption(new Option('--BackupId <id>', 'only this backup id').argParser((v: string) => validateBackupId(v, '--BackupId')))
    .addOption(new Option('--backupId <id>').hideHelp().argParser((v: string) => validateBackupId(v, '--backupId')))
    .addOption(
      new Option('--BackupStatus <statuses>', 'only these statuses, comma separated; `failed` matches `failed: timeout`').argParser(
        splitList,
      ),
    )
    .addOption(new Option('--backupStatus <statuses>').hideHelp().argParser(splitList))
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(
      async (
        opts: { BackupId?: string; backupId?: string; BackupStatus?: string[]; backupStatus?: string[]; format: 'table' | 'json' },
        cmd: Command,
      ) => {
        const g = cmd.optsWithGlobals<GlobalOptions>();
        const config = (await import('./context.js')).agentConfigFor(g);
        const { queryCommand } = await import('./spider-master.js');
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

  registerDaemonCommands(program, setExit);
  return program;
}
