import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadAgentConfig, DEFAULT_AGENT_CONFIG, type AgentConfig } from '../config/agent.js';
import { createLogger, type AgentLogger } from '../log.js';
import { checkCommand } from './check.js';
import { registerDaemonCommands } from './daemon-commands.js';
import { queryCommand, scheduleCommand } from './spider-master.js';
import { validateBackupId } from '../core/backup-id.js';

export interface GlobalOptions {
  agentConfig?: string;
  strict?: boolean;
  config?: string[];
}

/** The agent config for a CLI command; its warnings go to stderr, one line each. */
export function agentConfigFor(opts: GlobalOptions): AgentConfig {
  const config = loadAgentConfig(opts.agentConfig, process.cwd(), { strict: opts.strict === true });
  for (const w of config.warnings) process.stderr.write(`spiderbackup: warning: ${w}\n`);
  return config;
}

/** The agent config and a logger for a CLI command (logs go to stderr; stdout is the output). */
export function commandContext(opts: GlobalOptions): { config: AgentConfig; log: AgentLogger } {
  const config = agentConfigFor(opts);
  const log = createLogger({ level: config.log.level, file: config.log.file, fd: 2 });
  return { config, log };
}

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

function packageVersion(): string {
  const file = fileURLToPath(new URL('../../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

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
      const { config, log } = commandContext(g);
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
      const { config, log } = commandContext(g);
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
        const { config } = commandContext(g);
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
