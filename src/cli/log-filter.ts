// Which log lines `spiderbackup logs` shows. Lines are pino JSON; task lines carry backupId and
// port (see check/check.ts and the supervisor), so filtering is a field comparison, never a regex
// over the text (a backup id that is a prefix of another must not match it).

/**
 * How many rotated files `spiderbackup logs` reads before the log file (log-source.ts, `rotated`).
 * Here rather than there so that the command's help names it without loading the reader.
 */
export const ROTATED_FILES = 5;

export const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

export interface LogFilter {
  backupId?: string;
  port?: number;
  /** Lowest pino level shown. */
  minLevel?: number;
}

export type Parsed = { kind: 'json'; record: Record<string, unknown> } | { kind: 'text'; text: string };

export function parseLine(line: string): Parsed {
  const t = line.trim();
  if (t.startsWith('{')) {
    try {
      const v = JSON.parse(t) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { kind: 'json', record: v as Record<string, unknown> };
    } catch {
      // not JSON after all
    }
  }
  return { kind: 'text', text: line };
}

export const isEmptyFilter = (f: LogFilter): boolean => f.backupId === undefined && f.port === undefined && f.minLevel === undefined;

export function matches(p: Parsed, f: LogFilter): boolean {
  // A line that is not a log record (a stack trace, a stray write) says nothing to filter on.
  if (p.kind === 'text') return isEmptyFilter(f);
  const r = p.record;
  if (f.backupId !== undefined && r.backupId !== f.backupId) return false;
  if (f.port !== undefined && Number(r.port) !== f.port) return false;
  if (f.minLevel !== undefined && !(typeof r.level === 'number' && r.level >= f.minLevel)) return false;
  return true;
}
