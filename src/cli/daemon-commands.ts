// The daemon and the operator commands around it: daemon, pause, resume, status, logs. Only their
// options and help are defined here; what each one runs is loaded when it runs (daemon-actions.ts,
// and the daemon itself from ../daemon/daemon.js).
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseDuration } from '../config/duration.js';
import { LEVELS, ROTATED_FILES } from '../daemon/log-filter.js';
import { PAUSE_MEANING } from '../daemon/status-view.js';
import { errorMessage } from '../errors.js';
import type { LogsOptions } from './daemon-actions.js';
import type { GlobalOptions } from './context.js';

type SetExit = (code: number) => void;

/** Exit code of `status` when the daemon is not running (as `systemctl status` does). */
export const STATUS_NOT_RUNNING = 3;

export function registerDaemonCommands(program: Command, setExit: SetExit): void {
  const command = (name: string) => program.command(name);
  command('daemon')
    .description(
      'Run the agent: the check step every [agent] tick_interval, the daily schedule from [schedule] cron, metrics. Meant for systemd.',
    )
    .addHelpText(
      'after',
      '\nSignals: SIGHUP reloads the agent config and reopens the log file, SIGUSR2 reopens the log file, SIGTERM/SIGINT stop (running ' +
        'backups go on).',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      (await import('../daemon/heap.js')).keepYoungGenerationSmall();
      const [{ MetricsListenError, runDaemon }, { LockHeldError }] = await Promise.all([
        import('../daemon/daemon.js'),
        import('../daemon/lock.js'),
      ]);
      try {
        setExit(await runDaemon({ agentConfigFile: g.agentConfig, strict: g.strict === true }));
      } catch (err) {
        if (!(err instanceof LockHeldError || err instanceof MetricsListenError)) throw err;
        process.stderr.write(`spiderbackup: ${errorMessage(err)}\n`);
        setExit(1);
      }
      // Supervisors started by this process are detached but still hold handles here; they must
      // neither keep the daemon alive nor be waited for.
      process.exit(process.exitCode ?? 0);
    });

  command('pause')
    .description(`Pause this host's agent for a while ("skip tonight's backup"): ${PAUSE_MEANING}.`)
    .requiredOption('--for <duration>', 'how long, e.g. 24h, 90m, 2d', parseForDuration)
    .option('--reason <text>', 'why; shown by status and in the log')
    .addHelpText(
      'after',
      '\nBackups already running go on. The pause ends by itself; `spiderbackup resume` ends it early. It survives daemon restarts.',
    )
    .action(async (opts: { for: number; reason?: string }, cmd: Command) => {
      const { pauseCommand } = await import('./daemon-actions.js');
      setExit(await pauseCommand(cmd.optsWithGlobals<GlobalOptions>(), opts.for, opts.reason));
    });

  command('resume')
    .description('End a pause: backups start and the schedule fires again from the next tick.')
    .action(async (_opts: unknown, cmd: Command) => {
      const { resumeCommand } = await import('./daemon-actions.js');
      setExit(resumeCommand(cmd.optsWithGlobals<GlobalOptions>()));
    });

  command('status')
    .description(
      'What the agent sees: daemon alive or not, pause, last tick, last error, next scheduled run, instances and their current tasks.',
    )
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .addHelpText(
      'after',
      `\nExit code: 0 when the daemon runs, ${STATUS_NOT_RUNNING} when it does not (the last state it saw is still shown).`,
    )
    .action(async (opts: { format: 'table' | 'json' }, cmd: Command) => {
      const { statusCommand } = await import('./daemon-actions.js');
      const running = await statusCommand(cmd.optsWithGlobals<GlobalOptions>(), opts.format);
      setExit(running ? 0 : STATUS_NOT_RUNNING);
    });

  command('logs')
    .description('Show the agent log (the [log] file, --file, or stdin), filtered and pretty-printed.')
    .addHelpText(
      'after',
      `\nWithout -f, the rotated files logrotate left next to the file are read first, oldest first: <file>.N or <file>.N.gz, N = 1 to ` +
        `${ROTATED_FILES}.`,
    )
    .option('-f, --follow', 'keep reading as lines are added, across log rotation', false)
    .option('--backup-id <id>', 'only lines of this backup id')
    .option('--port <port>', 'only lines of this instance port', parsePort)
    .addOption(new Option('--level <level>', 'lowest level shown').choices(Object.keys(LEVELS)))
    .option(
      '--file <file>',
      'read this file instead of [log] file; - reads stdin (e.g. journalctl -u spiderbackup -o cat | spiderbackup logs --file -)',
    )
    .option('-n, --lines <n>', 'only the last n matching lines of what is there already (default with -f: 10)', parseCount)
    .option('--json', 'print the matching JSON lines as they are', false)
    .action(async (opts: LogsOptions, cmd: Command) => {
      const { logsCommand } = await import('./daemon-actions.js');
      await logsCommand(opts, cmd.optsWithGlobals<GlobalOptions>());
      setExit(0);
    });
}

function parseForDuration(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError('must be a duration such as 24h, 90m or 2d');
  return ms;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number');
  return n;
}

function parseCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a number of lines');
  return Number(value);
}
