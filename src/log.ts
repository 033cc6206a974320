import { closeSync, fstatSync, mkdirSync, openSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

// Any field that could carry a credential is censored wherever it appears in a log line.
const REDACT = ['password', 'MysqlPasswd', '*.password', '*.MysqlPasswd', '*.*.password', 'err.sql'];

/**
 * How long the log file's path may be missing before a writer creates it again. logrotate
 * renames the file and then creates the new one with O_EXCL; a writer that recreated the path in
 * between would make logrotate move that file aside to `<file>-YYYYMMDDHH.backup` (and report an
 * error), where `spiderbackup logs` never looks. So a line written while the path is missing goes
 * on to the renamed file (read as `<file>.1`), and only a path that stays missing (the file was
 * deleted) is recreated.
 */
export const MISSING_GRACE_MS = 1000;
/** How long a writer that could not reopen the log file after a rotation waits before it tries again. */
export const REOPEN_RETRY_MS = 1000;

export interface LogOptions {
  level?: string;
  /** Append to this file instead of stdout; reopened by `reopen()` and, see followRotation, by itself. */
  file?: string;
  name?: string;
  /** fd when there is no file: 1 for the daemon (journald), 2 for CLI commands (stdout is output). */
  fd?: 1 | 2;
  /**
   * With `file`: before each line, check (one stat) that the path still names the file that is
   * open, and reopen it when logrotate has renamed it and created a new one. Default true.
   *
   * It is the default, not an opt-in, because every process that appends to `[log] file` needs
   * it and none can be relied on to be told: a backup's supervisor lives for hours, detached,
   * and no postrotate script knows it; the daemon and a CLI command are covered the same way, so
   * a missing or wrong postrotate loses nothing. The cost is one stat(2) per line, and these
   * processes write few lines. copytruncate needs nothing: the file is opened O_APPEND.
   */
  followRotation?: boolean;
}

export interface AgentLogger {
  logger: Logger;
  /** Reopens the log file after rotation; no-op for stdout. Throws when the file cannot be opened (the old one stays in use). */
  reopen(): void;
  flush(): void;
}

/** The pino (sonic-boom) file destination, as far as it is used here. */
type FileDestination = DestinationStream & {
  fd: number;
  reopen(): void;
  flushSync(): void;
  listeners(event: 'ready'): ((...args: unknown[]) => void)[];
  removeListener(event: 'ready', listener: (...args: unknown[]) => void): unknown;
  once(event: 'error', listener: (err: unknown) => void): unknown;
};

const identity = (s: Stats): string => `${s.dev}:${s.ino}`;

export function createLogger(opts: LogOptions = {}): AgentLogger {
  if (!opts.file) {
    const dest = pino.destination({ dest: opts.fd ?? 1, sync: true });
    return { logger: makeLogger(opts, dest), reopen: () => {}, flush: () => dest.flushSync() };
  }
  const file = opts.file;
  const dest = pino.destination({ dest: file, append: true, mkdir: true, sync: true }) as unknown as FileDestination;
  // Identity (device and inode) of the file that is open, taken from the descriptor, not the path.
  let openId = identity(fstatSync(dest.fd));

  const reopen = (): void => {
    // When sonic-boom's own reopen cannot open the file, it emits the error a tick later, which
    // pino re-emits with nobody listening (the process dies), and it leaves a listener behind that
    // would close the old descriptor's number once a later reopen works, again if it failed twice.
    // So the file is opened here first, and sonic-boom reopens only what could be opened.
    mkdirSync(dirname(file), { recursive: true });
    closeSync(openSync(file, 'a'));
    const before = dest.listeners('ready');
    try {
      dest.reopen(); // sync mode: the new descriptor is in place when this returns
    } catch (err) {
      // It could be opened a moment ago: clean up after sonic-boom all the same.
      for (const l of dest.listeners('ready')) if (!before.includes(l)) dest.removeListener('ready', l as (...args: unknown[]) => void);
      dest.once('error', (e: unknown) => {
        if (e !== err) throw e;
      });
      throw err;
    }
    openId = identity(fstatSync(dest.fd));
  };

  if (opts.followRotation !== false) {
    let missingSince: number | undefined;
    // A reopen that failed (e.g. the new file is not writable for this user) is retried after
    // REOPEN_RETRY_MS, not on every line, and warned about once until one works.
    let failedAt: number | undefined;
    let warned = false;
    let warning = false;
    const write = dest.write.bind(dest);
    const followed = (): void => {
      let now: Stats | undefined;
      try {
        now = statSync(file, { throwIfNoEntry: false });
      } catch {
        return; // cannot tell (e.g. the directory became unreadable): keep writing where we are
      }
      const t = Date.now();
      if (now === undefined) {
        missingSince ??= t;
        if (t - missingSince < MISSING_GRACE_MS) return;
      } else {
        missingSince = undefined;
        // The renamed file stays open here, so a new file at the path cannot have its inode.
        if (identity(now) === openId) return;
      }
      if (failedAt !== undefined && t - failedAt < REOPEN_RETRY_MS) return;
      try {
        reopen();
        failedAt = undefined;
        warned = false;
      } catch (err) {
        failedAt = t;
        if (!warned) {
          warned = true;
          warn(err);
        }
      }
    };
    // The warning goes to the file still open, through the logger: a nested write, not rechecked.
    const warn = (err: unknown): void => {
      warning = true;
      try {
        logger?.warn(
          { file, err: err instanceof Error ? err.message : String(err) },
          'cannot reopen the log file after rotation; writing on to the old one',
        );
      } finally {
        warning = false;
      }
    };
    dest.write = (data: string): void => {
      if (!warning) followed();
      write(data);
    };
  }
  // The closures above log through it only later, when lines are written.
  const logger = makeLogger(opts, dest);
  return { logger, reopen, flush: () => dest.flushSync() };
}

function makeLogger(opts: LogOptions, dest: DestinationStream): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid, ...(opts.name ? { name: opts.name } : {}) },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest,
  );
}

/**
 * Reopen the log file on these signals (default SIGUSR2 and SIGHUP), for a process without
 * handlers of its own, e.g. a supervisor: `const { logger, flush } = reopenOnSignals(createLogger(…))`.
 * Not needed for rotation (followRotation reopens before the next line), but a postrotate script
 * may then signal every spiderbackup process, and with a handler the signal no longer terminates
 * one. A reopen that fails keeps the old file and logs a warning there. Returns `agent`.
 */
export function reopenOnSignals(agent: AgentLogger, signals: readonly NodeJS.Signals[] = ['SIGUSR2', 'SIGHUP']): AgentLogger {
  const handler = (signal: NodeJS.Signals) => {
    try {
      agent.reopen();
    } catch (err) {
      agent.logger.warn(
        { signal, err: err instanceof Error ? err.message : String(err) },
        'cannot reopen the log file; writing on to the old one',
      );
    }
  };
  for (const s of signals) process.on(s, handler);
  return agent;
}
