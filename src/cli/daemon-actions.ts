// What the operator commands around the daemon do: pause, resume, status, logs (their options are
// in daemon-commands.ts). None of them talks to a database; pino-pretty is loaded only to
// pretty-print.
import { userInfo } from 'node:os';
import type { AgentConfig } from '../config/agent.js';
import { formatDuration } from '../config/duration.js';
import { daemonLockHolder } from '../daemon/lock.js';
import { LEVELS, matches, parseLine, type LogFilter } from '../daemon/log-filter.js';
import { readLogFile, readLogStream, ROTATED_FILES } from '../daemon/log-source.js';
import { clearPause, pauseFile, readPause, writePause, type PauseState } from '../daemon/pause.js';
import { readStatus, type DaemonStatus } from '../daemon/status.js';
import { PAUSE_MEANING, renderStatusText, statusView } from '../daemon/status-view.js';
import { errorMessage, OperationError, UsageError } from '../errors.js';
import { agentConfigFor, type GlobalOptions } from './context.js';
import { print, renderJson } from './output.js';

/** `spiderbackup pause --for`. */
export async function pauseCommand(g: GlobalOptions, forMs: number, reason: string | undefined): Promise<number> {
  const config = agentConfigFor(g);
  const state = writePauseOrFail(config, forMs, reason);
  print(`Paused until ${state.until} (${formatDuration(forMs)}): ${PAUSE_MEANING}.`);
  print('Backups already running go on. End it early with: spiderbackup resume');
  if (!(await isDaemonRunning(config))) print('Note: the daemon is not running; the pause applies when it starts.');
  return 0;
}

/** `spiderbackup resume`. */
export function resumeCommand(g: GlobalOptions): number {
  const config = agentConfigFor(g);
  let was: PauseState | undefined;
  try {
    was = clearPause(config.agent.stateDir);
  } catch (err) {
    throw new OperationError(`cannot remove ${pauseFile(config.agent.stateDir)}: ${errorMessage(err)}`);
  }
  print(was ? `Resumed (the pause until ${was.until} is lifted); backups start again at the next tick.` : 'Not paused; nothing to do.');
  return 0;
}

/** `spiderbackup status`; resolves whether the daemon runs. */
export async function statusCommand(g: GlobalOptions, format: 'table' | 'json'): Promise<boolean> {
  const config = agentConfigFor(g);
  const view = await gatherStatus(config);
  print(format === 'json' ? renderJson(view) : renderStatusText(view, new Date()));
  return view.daemon.running;
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

export interface LogsOptions {
  follow: boolean;
  backupId?: string;
  port?: number;
  level?: string;
  file?: string;
  lines?: number;
  json: boolean;
}

/** `spiderbackup logs`. The agent config is read only when no --file is given. */
export async function logsCommand(opts: LogsOptions, g: GlobalOptions): Promise<void> {
  const filter: LogFilter = {
    ...(opts.backupId !== undefined ? { backupId: opts.backupId } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.level !== undefined ? { minLevel: LEVELS[opts.level] as number } : {}),
  };
  const file = opts.file ?? agentConfigFor(g).log.file;
  if (file === undefined && process.stdin.isTTY) {
    throw new UsageError(
      'no [log] file is configured, so the daemon logs to journald: journalctl -u spiderbackup -o cat | spiderbackup logs --file - (or ' +
        'journalctl -f … for -f)',
    );
  }
  const pretty = opts.json
    ? undefined
    : (await import('pino-pretty')).prettyFactory({
        colorize: process.stdout.isTTY === true,
        translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
        ignore: 'hostname',
      });
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
