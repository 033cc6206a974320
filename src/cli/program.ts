import { Command, InvalidArgumentError, Option } from 'commander';
import { loadAgentConfig, DEFAULT_AGENT_CONFIG, type AgentConfig } from '../config/agent.js';
import { createLogger, type AgentLogger } from '../log.js';
import { checkCommand } from './check.js';

export interface GlobalOptions {
  agentConfig?: string;
  config?: string[];
}

/** The agent config and a logger for a CLI command (logs go to stderr; stdout is the output). */
export function commandContext(opts: GlobalOptions): { config: AgentConfig; log: AgentLogger } {
  const config = loadAgentConfig(opts.agentConfig);
  const log = createLogger({ level: config.log.level, file: config.log.file, fd: 2 });
  return { config, log };
}

export const splitList = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value.split(',').map((s) => s.trim()).filter((s) => s !== ''),
];

export function parseFormat(value: string): 'table' | 'json' {
  if (value !== 'table' && value !== 'json') throw new InvalidArgumentError('must be table or json');
  return value;
}

const configOption = () =>
  new Option('-c, --config <files>', 'instance config files, comma separated (default: every dbbackup.<port>.ini in [agent] config_dir)').argParser(splitList);

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('spiderbackup')
    .description('Coordinates TenDB Cluster (Spider) global backups on this host.')
    .option('--agent-config <file>', `the agent's settings (INI); default ${DEFAULT_AGENT_CONFIG}, used only if it exists`)
    .addOption(configOption())
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });

  program
    .command('check')
    .description('Per-host step: housekeeping of this host\'s tasks, then run the earliest waiting backup id, instance by instance.')
    .option('--run', 'start the backups (without it: only list what would run, change nothing)', false)
    .option('--backup-id <id>', 'run the tasks of this backup id instead of the earliest one')
    .addOption(configOption())
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .addHelpText('after', '\nExit code: 0 when every backup run succeeded, 1 when any failed or an instance/config could not be used, 2 on bad usage.')
    .action(async (opts: { run: boolean; backupId?: string; format: 'table' | 'json' }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { config, log } = commandContext(g);
      setExit(await checkCommand(config, log.logger, { run: opts.run, backupId: opts.backupId, files: g.config, format: opts.format }));
      log.flush();
    });

  return program;
}
