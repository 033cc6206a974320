// Which archived binlog files `expire` removes (issue 19 item 5): per shard, a file goes only when
// every one of its events is at or before the start position of every kept backup of that shard
// (the position a restore of it rolls forward from: its master's manifest, else its replica's
// master position) and no kept point needs it. A shard without a kept backup keeps everything, and
// so does one whose position cannot be compared with the files. Pure: unit-tested without a store.
import { describeFile, type ArchivedFile } from '../archive/archive-index.js';
import { covers, parseGtidPos } from '../archive/gtid.js';
import type { RestorePoint } from '../cluster/restore-point-model.js';
import type { Manifest } from '../runner/manifest.js';
import { startPositionOf } from './plan-model.js';

/** Where a restore of one shard from one kept backup starts replaying. */
export interface ShardStart {
  backupId: string;
  /** The server whose binlog `binlogFile` names (the master whose backup it is); undefined for a replica's. */
  server?: { host: string; port: number };
  gtid?: string;
  binlogFile?: string;
  /** mariadb-dump prints its GTID a moment after its snapshot: only its file/offset is exact. */
  gtidExact: boolean;
}

/**
 * The start of `shard` in one kept backup: its master's manifest when there is one (a restore
 * prefers it), else its replica's master position; undefined when the backup has neither.
 */
export function shardStartOf(backupId: string, manifests: readonly Manifest[], shard: number): ShardStart | 'unknown' | undefined {
  const ofShard = manifests.filter((m) => m.shardValue === shard && !/spider|tdbctl/i.test(m.role));
  const master = ofShard.find((m) => !/slave|replica/i.test(m.role));
  const replica = ofShard.find((m) => /slave|replica/i.test(m.role));
  const m = master ?? replica;
  if (!m) return undefined;
  const p = startPositionOf(m, master ? 'master' : 'replica');
  if (p.problem !== undefined && !p.gtid && !p.binlogFile) return 'unknown';
  return {
    backupId,
    ...(master ? { server: { host: m.host, port: m.port } } : {}),
    ...(p.gtid ? { gtid: p.gtid } : {}),
    ...(p.binlogFile ? { binlogFile: p.binlogFile } : {}),
    gtidExact: m.tool.name !== 'mariadb-dump',
  };
}

/** The GTID state after the file's last archived event. */
export function fileEnd(f: ArchivedFile): string {
  const last = [...f.segments].sort((a, b) => b.offset - a.offset)[0];
  return last ? last.endGtid : f.fileStart;
}

/** Whether every event of `f` is at or before `s`. */
export function fileBefore(f: ArchivedFile, s: ShardStart): boolean {
  if (!f.closed) return false; // more events may still come into it
  const sameServer = s.server !== undefined && s.server.host === f.host && s.server.port === f.port;
  // The backup's own server: its file/offset is exact; an older file of it holds only earlier events.
  if (sameServer && s.binlogFile !== undefined) return numberedBefore(f.file, s.binlogFile);
  if (s.gtid !== undefined && (s.gtidExact || !sameServer)) {
    try {
      return covers(parseGtidPos(s.gtid), parseGtidPos(fileEnd(f)));
    } catch {
      return false;
    }
  }
  return false;
}

/** mysql-bin.000007 before mysql-bin.000012; names that do not count up cannot be told apart. */
function numberedBefore(a: string, b: string): boolean {
  const x = /^(.*\.)(\d+)$/.exec(a);
  const y = /^(.*\.)(\d+)$/.exec(b);
  return x !== null && y !== null && x[1] === y[1] && Number(x[2]) < Number(y[2]);
}

export interface BinlogVerdict {
  file: ArchivedFile;
  go: boolean;
  why: string;
}

/**
 * The verdict on each archived file of one shard. `starts`: the shard's start in every kept backup
 * that has it ('unknown': a kept backup whose start cannot be read). `points`: the kept points. A
 * kept point before some kept backup's start (one taken by hand before the backups now kept)
 * holds back every file that begins before it.
 */
export function judgeShardBinlogs(
  shard: number,
  files: readonly ArchivedFile[],
  starts: readonly (ShardStart | 'unknown')[],
  points: readonly RestorePoint[],
): BinlogVerdict[] {
  const keepAll = (why: string) => files.map((file) => ({ file, go: false, why }));
  if (starts.length === 0) return keepAll(`no kept backup of shard ${shard}`);
  if (starts.includes('unknown')) return keepAll(`a kept backup of shard ${shard} records no start position`);
  const known = starts as ShardStart[];
  const early = points.flatMap((p) => {
    const g = p.status === 'taken' ? p.shards.find((s) => s.shardValue === shard)?.gtid : undefined;
    if (!g) return [];
    try {
      const at = parseGtidPos(g);
      return known.every((s) => s.gtid !== undefined && covers(at, parseGtidPos(s.gtid))) ? [] : [{ name: p.name, at }];
    } catch {
      return [];
    }
  });
  return files.map((file) => {
    const blocking = known.find((s) => !fileBefore(file, s));
    if (blocking)
      return {
        file,
        go: false,
        why: file.closed ? `backup ${blocking.backupId} needs it (or it cannot be told)` : 'still being written (not closed)',
      };
    let startsBefore: (p: { at: ReturnType<typeof parseGtidPos> }) => boolean;
    try {
      const start = parseGtidPos(file.fileStart);
      startsBefore = (p) => !covers(start, p.at);
    } catch {
      startsBefore = () => true;
    }
    const needed = early.find(startsBefore);
    if (needed) return { file, go: false, why: `restore point ${needed.name} (before the kept backups) may need it` };
    return { file, go: true, why: `before the start of every kept backup (${known.map((s) => s.backupId).join(', ')})` };
  });
}

/** "mysql-bin.000007 of 10.0.0.1:3306 (shard 0)" */
export const describeArchived = (f: ArchivedFile): string => `${describeFile(f)} (shard ${f.shard})`;
