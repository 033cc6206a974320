// The daemon and the operator commands around it: daemon, pause, resume, status, logs.
import { userInfo } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { prettyFactory } from 'pino-pretty';
import type { AgentConfig } from '../config/agent.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import { MetricsListenError, runDaemon } from '../daemon/daemon.js';
import { daemonLockHolder, LockHeldError } from '../daemon/lock.js';
import { LEVELS, matches, parseLine, type LogFilter } from '../daemon/log-filter.js';
import { readLogFile, readLogStream, ROTATED_FILES } from '../daemon/log-source.js';
import { clearPause, pauseFile, readPause, writePause, type PauseState } from '../daemon/pause.js';
import { readStatus, type DaemonStatus } from '../daemon/status.js';
import { PAUSE_MEANING, renderStatusText, statusView } from '../daemon/status-view.js';
import { errorMessage, OperationError, UsageError } from '../errors.js';
import { print, renderJson } from './output.js';
import { agentConfigFor, type GlobalOptions } from './program.js';

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
      const config = agentConfig(cmd);
      const state = writePauseOrFail(config, opts.for, opts.reason);
      print(`Paused until ${state.until} (${formatDuration(opts.for)}): ${PAUSE_MEANING}.`);
      print('Backups already running go on. End it early with: spiderbackup resume');
      if (!(await isDaemonRunning(config))) print('Note: the daemon is not running; the pause applies when it starts.');
      setExit(0);
    });

  command('resume')
    .description('End a pause: backups start and the schedule fires again from the next tick.')
    .action((_opts: unknown, cmd: Command) => {
      const config = agentConfig(cmd);
      let was: PauseState | undefined;
      try {
        was = clearPause(config.agent.stateDir);
      } catch (err) {
        throw new OperationError(`cannot remove ${pauseFile(config.agent.stateDir)}: ${errorMessage(err)}`);
      }
      print(was ? `Resumed (the pause until ${was.until} is lifted); backups start again at the next tick.` : 'Not paused; nothing to do.');
      setExit(0);
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
      const config = agentConfig(cmd);
      const view = await gatherStatus(config);
      print(opts.format === 'json' ? renderJson(view) : renderStatusText(view, new Date()));
      setExit(view.daemon.running ? 0 : STATUS_NOT_RUNNING);
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
      await logsCommand(opts, () => agentConfig(cmd));
      setExit(0);
    });
}

function agentConfig(cmd: Command): AgentConfig {
  return agentConfigFor(cmd.optsWithGlobals<GlobalOptions>());
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

function who(): string | undefined {
  if (process.env.SUDO_USER) return process.env.SUDO_USER;
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

function writePauseOrFail(config: AgentConfig, forMs: number, reason: string | undefined): PauseState {
  try {
    return writePause(config.agent.stateDir, forMs, reason, who());
  } catch (err) {
    throw new OperationError(`cannot write ${pauseFile(config.agent.stateDir)}: ${errorMessage(err)} (run as the daemon's user or root)`);
  }
}

async function isDaemonRunning(config: AgentConfig): Promise<boolean> {
  return (await daemonLockHolder(config.agent.hostLock)).held;
}

async function gatherStatus(config: AgentConfig) {
  const { stateDir } = config.agent;
  const { held: alive, holder } = await daemonLockHolder(config.agent.hostLock);
  let snapshot: DaemonStatus | undefined;
  let snapshotError: string | undefined;
  try {
    snapshot = readStatus(stateDir);
  } catch (err) {
    snapshotError = `cannot read the daemon's status file: ${errorMessage(err)}`;
  }
  let pause: PauseState | undefined;
  let pauseError: string | undefined;
  try {
    pause = readPause(stateDir);
  } catch (err) {
    pauseError = errorMessage(err);
  }
  return statusView({ now: new Date(), stateDir, daemon: { pid: holder?.pid, alive }, snapshot, snapshotError, pause, pauseError });
}

interface LogsOptions {
  follow: boolean;
  backupId?: string;
  port?: number;
  level?: string;
  file?: string;
  lines?: number;
  json: boolean;
}

async function logsCommand(opts: LogsOptions, config: () => AgentConfig): Promise<void> {
  const filter: LogFilter = {
    ...(opts.backupId !== undefined ? { backupId: opts.backupId } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.level !== undefined ? { minLevel: LEVELS[opts.level] as number } : {}),
  };
  const file = opts.file ?? config().log.file;
  if (file === undefined && process.stdin.isTTY) {
    throw new UsageError(
      'no [log] file is configured, so the daemon logs to journald: journalctl -u spiderbackup -o cat | spiderbackup logs --file - (or ' +
        'journalctl -f … for -f)',
    );
  }
  const pretty = opts.json
    ? undefined
    : prettyFactory({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'hostname' });
  // `spiderbackup logs | head` closes the pipe early; that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  });
  const show = (line: string) => {
    const p = parseLine(line);
    if (!matches(p, filter)) return;
    if (p.kind === 'text' || pretty === undefined) process.stdout.write(`${line}\n`);
    else process.stdout.write(pretty(p.record));
  };
  const keep = opts.lines ?? (opts.follow ? 10 : undefined);
  // Until the existing content is read, only the last `keep` matching lines are kept.
  let backlog: string[] | undefined = keep === undefined ? undefined : [];
  const onLine = (line: string) => {
    if (backlog === undefined) return show(line);
    if (!matches(parseLine(line), filter)) return;
    backlog.push(line);
    if (backlog.length > (keep as number)) backlog.shift();
  };
  const flushBacklog = () => {
    const lines = backlog ?? [];
    backlog = undefined;
    for (const l of lines) show(l);
  };
  if (file === undefined || file === '-') {
    await readLogStream(process.stdin, onLine);
    flushBacklog();
    return;
  }
  // Without -f, a backup's lines are all found after a rotation: its rotated files come first.
  // With -f, what is there already is the file's own end.
  const rotated = opts.follow ? 0 : ROTATED_FILES;
  const onSkipped = (name: string, err: unknown) =>
    process.stderr.write(`spiderbackup: warning: ${name}: ${errorMessage(err)} (not read, or not to its end)\n`);
  try {
    await readLogFile(file, onLine, { follow: opts.follow, onCaughtUp: flushBacklog, rotated, onSkipped });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new OperationError(`${file}: no such log file`);
    throw err;
  }
  flushBacklog();
}
