import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

// Any field that could carry a credential is censored wherever it appears in a log line.
const REDACT = ['password', 'MysqlPasswd', '*.password', '*.MysqlPasswd', '*.*.password', 'err.sql'];

export interface LogOptions {
  level?: string;
  /** Append to this file instead of stdout; reopened by `reopen()` (logrotate). */
  file?: string;
  name?: string;
  /** fd when there is no file: 1 for the daemon (journald), 2 for CLI commands (stdout is output). */
  fd?: 1 | 2;
}

export interface AgentLogger {
  logger: Logger;
  /** Reopens the log file after rotation; no-op for stdout. */
  reopen(): void;
  flush(): void;
}

export function createLogger(opts: LogOptions = {}): AgentLogger {
  const dest: DestinationStream & { reopen?: () => void; flushSync?: () => void } = opts.file
    ? pino.destination({ dest: opts.file, append: true, mkdir: true, sync: true })
    : pino.destination({ dest: opts.fd ?? 1, sync: true });
  const logger = pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid, ...(opts.name ? { name: opts.name } : {}) },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest,
  );
  return {
    logger,
    reopen: () => {
      if (opts.file) dest.reopen?.();
    },
    flush: () => dest.flushSync?.(),
  };
}
