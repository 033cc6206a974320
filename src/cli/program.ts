// The command line: the program's own options, then one module per command (./commands/). Only
// commander and the command definitions are loaded here; each command loads what it needs when it
// runs (`await import`), so --help, --version and usage errors never load the database driver, the
// logger, the metrics or the tables.
import { Command } from 'commander';
import { DEFAULT_AGENT_CONFIG } from '../config/defaults.js';
import type { HeldSignals } from '../signals.js';
import { packageVersion } from '../version.js';
import * as cancel from './commands/cancel.js';
import * as check from './commands/check.js';
import * as daemon from './commands/daemon.js';
import * as expire from './commands/expire.js';
import * as list from './commands/list.js';
import * as logs from './commands/logs.js';
import * as pause from './commands/pause.js';
import * as query from './commands/query.js';
import * as repoCmd from './commands/repo.js';
import * as restorePlan from './commands/restore-plan.js';
import * as restoreCmd from './commands/restore.js';
import * as restorePoint from './commands/restore-point.js';
import * as resume from './commands/resume.js';
import * as sandbox from './commands/sandbox.js';
import * as schedule from './commands/schedule.js';
import * as status from './commands/status.js';
import * as verify from './commands/verify.js';
import { configOption, type SetExit } from './options.js';

/** In the order `--help` lists them. */
const COMMANDS = [
  check,
  schedule,
  query,
  list,
  cancel,
  verify,
  restorePoint,
  restorePlan,
  restoreCmd,
  expire,
  repoCmd,
  daemon,
  pause,
  resume,
  status,
  logs,
  sandbox,
];

export function buildProgram(setExit: SetExit, held?: HeldSignals): Command {
  const program = new Command('spiderbackup')
    .version(packageVersion())
    .description('Coordinates TenDB Cluster (Spider) global backups on this host.')
    .option('--agent-config <file>', `the agent's settings (INI); default ${DEFAULT_AGENT_CONFIG}, used only if it exists`)
    .option('--strict', 'unknown sections and keys in the agent settings are errors instead of warnings')
    .addOption(configOption())
    // Before any command is added: subcommands inherit it, so usage errors exit 2 everywhere.
    .exitOverride()
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ outputError: (str, write) => write(`spiderbackup: ${str}`) });
  for (const c of COMMANDS) c.register(program, setExit, held);
  // Only the daemon takes the signals held since start; any other command gets their defaults back.
  program.hook('preAction', (_program, action) => {
    if (action.name() !== 'daemon') held?.release();
  });
  hintHelpAfterError(program, 'spiderbackup');
  return program;
}

/** A usage error is its one line plus where the help is, not the whole help. */
function hintHelpAfterError(cmd: Command, path: string): void {
  cmd.showHelpAfterError(`(see ${path} --help)`);
  for (const sub of cmd.commands) hintHelpAfterError(sub, `${path} ${sub.name()}`);
}
