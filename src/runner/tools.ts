// The argument vectors of the real tools, and what their output says about the position of the
// backup. Pure: unit-tested without a server.
import type { RunnerRole, RunnerTool } from './args.js';

export const COMPRESSOR = 'zstd';
export const COMPRESS_ARGV = [COMPRESSOR, '-q', '-c', '-3'];
export const DECOMPRESS_ARGV = [COMPRESSOR, '-q', '-d', '-c'];

/** The one data file each tool writes into the backup directory. */
export const DATA_FILE: Record<RunnerTool, string> = {
  'mariadb-backup': 'backup.xbstream.zst',
  'mariadb-dump': 'dump.sql.zst',
};

export interface ToolContext {
  defaultsFile: string;
  /** Private scratch directory (mariadb-backup's --target-dir and --tmpdir). */
  scratch: string;
  /** The server's own datadir: mariadb-backup reads the files there. */
  datadir: string;
  role: RunnerRole;
  logBin: boolean;
  replica: boolean;
  /** `schema.table` of the instance's Spider tables (mariadb-dump: definitions only). */
  spiderTables: string[];
}

/** `--defaults-file` first: only our file is read, never /etc/mysql's client settings. */
export function toolArgv(tool: RunnerTool, ctx: ToolContext): string[] {
  if (tool === 'mariadb-backup') {
    return [
      'mariadb-backup',
      `--defaults-file=${ctx.defaultsFile}`,
      '--backup',
      '--stream=xbstream',
      `--datadir=${ctx.datadir}`,
      `--target-dir=${ctx.scratch}`,
      `--tmpdir=${ctx.scratch}`,
      ...(ctx.replica ? ['--slave-info'] : []),
    ];
  }
  // The position: on a replica its master's, the one a restore rolls forward from with the
  // master's binlogs (--dump-slave stops the SQL thread for the dump's start; it disables
  // --master-data); else the instance's own binlog when it writes one.
  const position = ctx.replica ? ['--dump-slave=2'] : ctx.logBin ? ['--master-data=2'] : [];
  return [
    'mariadb-dump',
    `--defaults-file=${ctx.defaultsFile}`,
    '--single-transaction',
    ...position,
    '--gtid',
    '--all-databases',
    '--routines',
    '--events',
    '--triggers',
    '--hex-blob',
    ...ctx.spiderTables.map((t) => `--ignore-table-data=${t}`),
  ];
}

export interface Position {
  binlogFile?: string;
  binlogPos?: number;
  gtid?: string;
}

/** From mariadb-backup's stderr: "MySQL binlog position: filename 'f', position 'p', GTID of the last change 'g'". */
export function positionFromBackupLog(text: string): Position {
  const m = /binlog position: filename '([^']*)', position '(\d+)'(?:, GTID of the last change '([^']*)')?/.exec(text);
  if (!m) return {};
  return { binlogFile: m[1] as string, binlogPos: Number(m[2]), ...(m[3] !== undefined ? { gtid: m[3] } : {}) };
}

/**
 * From mariadb-backup's stderr with --slave-info: "MySQL slave binlog position: master '' filename
 * 'f' position 'p'" (file-based replication; 10.11) or a gtid_slave_pos (GTID replication).
 */
export function masterPositionFromBackupLog(text: string): Position {
  const line = /MySQL slave binlog position: (.*)/.exec(text)?.[1];
  if (line === undefined) return {};
  const gtid = /gtid_slave_pos '?([\d,\s-]*\d)'?/.exec(line);
  const file = /filename '([^']*)',? position '?(\d+)'?/.exec(line);
  return {
    ...(file ? { binlogFile: file[1] as string, binlogPos: Number(file[2]) } : {}),
    ...(gtid ? { gtid: (gtid[1] as string).replace(/\s/g, '') } : {}),
  };
}

/**
 * From the head and the tail of a dump written with --master-data=2 (or --dump-slave=2) --gtid: the
 * file/offset is at the head, the GTID position ("deferred gtid setting") at the end.
 */
export function positionFromDumpHead(text: string): Position {
  const file = /MASTER_LOG_FILE='([^']*)', MASTER_LOG_POS=(\d+)/.exec(text);
  const gtid = /gtid_slave_pos='([^']*)'/.exec(text);
  return {
    ...(file ? { binlogFile: file[1] as string, binlogPos: Number(file[2]) } : {}),
    ...(gtid ? { gtid: gtid[1] as string } : {}),
  };
}
