// Binlog archive entries for unit tests: a segment and an archived file with only what a test
// cares about given, the rest neutral.
import type { ArchivedFile, Segment } from '../../src/archive/archive-index.js';

/** A segment from `offset`, `length` bytes, between two GTID states; its object named by its offset. */
export function segmentOf(offset: number, length: number, startGtid: string, endGtid: string, more: Partial<Segment> = {}): Segment {
  return {
    offset,
    length,
    object: `${String(offset).padStart(12, '0')}.zst`,
    storedBytes: length,
    sha256: 'x',
    encrypted: false,
    startGtid,
    endGtid,
    firstGtid: '',
    lastGtid: '',
    firstEventTime: '',
    lastEventTime: '',
    archivedAt: '',
    ...more,
  };
}

/** An archived file of shard 0 on port 3306, closed, none of its objects missing, unless given. */
export function archivedFileOf(f: Pick<ArchivedFile, 'host' | 'file' | 'fileStart' | 'segments'> & Partial<ArchivedFile>): ArchivedFile {
  return {
    format: 1,
    shard: 0,
    port: 3306,
    serverId: 1,
    closed: true,
    missing: [],
    folder: `c/binlogs/shard-${f.shard ?? 0}/${f.host}_${f.port ?? 3306}/${f.file}~t/`,
    ...f,
  };
}
