// Where a shard's replay from its backup to a point reads its binlogs (issue 19 item 4): from the
// binlog archive as far as it reaches without a hole, the rest from the live master. Pure: the
// archive's files come in, the runs and where the master has to take over go out.
import { replayRuns, type ArchivedFile, type Gap, type ReplayRun } from '../archive/archive-index.js';
import { aheadIn, parseGtidPos } from '../archive/gtid.js';

export interface ArchiveSplit {
  /** Runs of archived files to replay, in order (the first from the backup's position). */
  runs: ReplayRun[];
  /** The archive does not hold what follows this state: (restFrom, to] must come from the master. */
  restFrom?: string;
  /** Why the archive stops there: a hole, or its end (undefined when it holds nothing of the shard). */
  gap?: Gap;
}

/** Splits the replay of (from, to] into the archive's runs and the master's remainder. */
export function splitReplay(files: readonly ArchivedFile[], from: string, to: string): ArchiveSplit {
  if (aheadIn(parseGtidPos(to), parseGtidPos(from)).length === 0) return { runs: [] };
  if (files.length === 0) return { runs: [], restFrom: from };
  const whole = replayRuns(files, from, to);
  if ('runs' in whole) return { runs: whole.runs };
  const gap = whole.gap;
  const part = gap.after === from ? { runs: [] } : replayRuns(files, from, gap.after);
  return { runs: 'runs' in part ? part.runs : [], restFrom: gap.after, gap };
}

/** One binlog file of a replay, as plans print it (`source` says where it is read). */
export interface ReplayFile {
  source: 'archive' | 'master';
  file: string;
  /** The server whose binlog it is. */
  host: string;
  port: number;
  /** Archived: its segments replayed (from the file's start) and their bytes before compression. */
  segments?: number;
  bytes?: number;
  /** Replayed after this state. */
  startGtid: string;
}

export function archiveFiles(runs: readonly ReplayRun[]): ReplayFile[] {
  return runs.map((r) => ({
    source: 'archive',
    file: r.file.file,
    host: r.file.host,
    port: r.file.port,
    segments: r.segments.length,
    bytes: r.segments.reduce((n, s) => n + s.length, 0),
    startGtid: r.startGtid,
  }));
}

/** "after 0-1-40 up to 0-1-77: mysql-bin.000007 of 10.0.0.1:3306: …/000000004096.zst is missing" */
export const describeGap = (g: Gap): string => `GAP after ${g.after || '(start)'} up to ${g.before || '(end)'}: ${g.reason}`;
