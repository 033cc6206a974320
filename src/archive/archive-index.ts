// The binlog archive as data (README "Binlog archive"): per shard, the binlog files of whichever
// server was its master, each cut into segments (whole events), each file described by one index
// document listing its segments. From that: how far the archive reaches without a hole, the holes
// (a file purged before it was archived, a deleted object), and which segments a replay of
// (from, to] needs, in order. Pure: unit-tested without a store.
import { aheadIn, parseGtidPos, seqOf, type GtidState, covers } from './gtid.js';

export const ARCHIVE_FORMAT = 1;

/** One archived object: whole events of one binlog file from `offset` on. */
export interface Segment {
  /** First byte in the binlog file (0: the segment starts with the file's header). */
  offset: number;
  /** Binlog bytes in it (before compression and encryption). */
  length: number;
  /** Its object's name in the file's folder (`000000000000.zst`). */
  object: string;
  /** Size and sha256 of the stored object (ciphertext when encrypted). */
  storedBytes: number;
  sha256: string;
  encrypted: boolean;
  keyId?: string | undefined;
  /** GTID state before its first event and after its last ('0-1-41,1-2-7'). */
  startGtid: string;
  endGtid: string;
  /** First and last transaction's GTID in it ('' when none). */
  firstGtid: string;
  lastGtid: string;
  /** ISO times of its first and last event ('' when none has a time). */
  firstEventTime: string;
  lastEventTime: string;
  archivedAt: string;
}

/** `index.json` of one binlog file of one server: rewritten after each of its segments is stored. */
export interface FileIndex {
  format: typeof ARCHIVE_FORMAT;
  shard: number;
  host: string;
  port: number;
  serverId: number;
  /** The file's name on its server (mysql-bin.000042). */
  file: string;
  /** The file's Gtid_list: the state it starts at. */
  fileStart: string;
  /** Its last segment ends the file (a Rotate or Stop event): nothing more will be added. */
  closed: boolean;
  segments: Segment[];
}

/** A file index as read from the repository: where it is, and which of its objects are there. */
export interface ArchivedFile extends FileIndex {
  /** The folder of the file's objects, ending in `/`. */
  folder: string;
  /** Segment objects listed in the index but missing from the store. */
  missing: string[];
}

/** A hole in a shard's archive: the events after `after` up to `before` are not there. */
export interface Gap {
  after: string;
  before: string;
  /** Why, naming the file or object: "mysql-bin.000007 of 10.0.0.1:3306: 000000004096.zst is missing". */
  reason: string;
}

/** A stretch of one server's file to replay: its segments from the file's start up to the last one needed. */
export interface ReplayRun {
  file: ArchivedFile;
  /** Segments 0..k (the first carries the file's header, which the decoder needs). */
  segments: Segment[];
  /** Replay the events after this state … */
  startGtid: string;
  /** … up to this one, inclusive. */
  stopGtid: string;
}

/** The usable part of each file: its segments from offset 0 while they follow each other and are present. */
export function usableSegments(f: ArchivedFile): { segments: Segment[]; cut?: string } {
  const out: Segment[] = [];
  const missing = new Set(f.missing);
  let next = 0;
  for (const s of [...f.segments].sort((a, b) => a.offset - b.offset)) {
    if (s.offset !== next) return { segments: out, cut: `${describeFile(f)}: bytes ${next}…${s.offset} were never archived` };
    if (missing.has(s.object)) return { segments: out, cut: `${describeFile(f)}: ${f.folder}${s.object} is missing` };
    out.push(s);
    next = s.offset + s.length;
  }
  return { segments: out };
}

export const describeFile = (f: Pick<FileIndex, 'file' | 'host' | 'port'>): string => `${f.file} of ${f.host}:${f.port}`;

const endOf = (segs: readonly Segment[]): string => (segs.length === 0 ? '' : (segs[segs.length - 1] as Segment).endGtid);

/**
 * Replays (from, to] from the archive: the runs in order, or the first gap that stops it. Each
 * step takes, among the files whose usable part starts at or before the state reached and goes
 * beyond it, the one reaching farthest; its run replays from the state reached.
 */
export function replayRuns(files: readonly ArchivedFile[], from: string, to: string): { runs: ReplayRun[] } | { gap: Gap } {
  const target = parseGtidPos(to);
  let reached = parseGtidPos(from);
  let reachedText = from;
  const runs: ReplayRun[] = [];
  const usable = files.map((f) => ({ f, ...usableSegments(f) }));
  for (let guard = 0; guard <= files.length; guard++) {
    if (aheadIn(target, reached).length === 0) return { runs };
    let best: { f: ArchivedFile; segments: Segment[]; end: GtidState } | undefined;
    for (const u of usable) {
      if (u.segments.length === 0) continue;
      const start = parseGtidPos(u.f.fileStart);
      if (!covers(reached, start)) continue;
      // Up to the first segment that reaches the target (or the whole usable part).
      let k = u.segments.findIndex((s) => covers(parseGtidPos(s.endGtid), target));
      if (k === -1) k = u.segments.length - 1;
      const segs = u.segments.slice(0, k + 1);
      const end = parseGtidPos(endOf(segs));
      if (aheadIn(end, reached).filter((d) => seqOf(target, d) > seqOf(reached, d)).length === 0) continue;
      if (!best || covers(end, best.end)) best = { f: u.f, segments: segs, end };
    }
    if (!best) return { gap: gapAfter(usable, reachedText, to) };
    runs.push({ file: best.f, segments: best.segments, startGtid: reachedText, stopGtid: to });
    reachedText = endOf(best.segments);
    reached = best.end;
  }
  return { runs };
}

/** The hole right after `after`: what the files say about it. */
function gapAfter(usable: readonly { f: ArchivedFile; segments: Segment[]; cut?: string }[], after: string, to: string): Gap {
  const reached = parseGtidPos(after);
  // A file that would go on from here but for a missing object or unarchived bytes names it: it
  // starts at or before the state reached and its listed segments go beyond it (the state may lie
  // inside what is missing, e.g. a backup's position in a deleted object).
  for (const u of usable) {
    if (!u.cut) continue;
    if (
      covers(reached, parseGtidPos(u.f.fileStart)) &&
      !covers(reached, parseGtidPos(endOf([...u.f.segments].sort((a, b) => a.offset - b.offset)) || u.f.fileStart))
    )
      return { after, before: nextStart(usable, after) ?? to, reason: u.cut };
  }
  const before = nextStart(usable, after);
  if (before !== undefined)
    return {
      after,
      before,
      reason: `no archived binlog holds the events after ${after || 'the start'} up to ${before} (purged before they were archived?)`,
    };
  return { after, before: to, reason: `the archive ends at ${after || 'its start'}` };
}

/** The nearest state after `after` at which some archived file starts. */
function nextStart(usable: readonly { f: ArchivedFile }[], after: string): string | undefined {
  const reached = parseGtidPos(after);
  const later = usable
    .map((u) => u.f.fileStart)
    .filter((s) => !covers(reached, parseGtidPos(s)))
    .sort((a, b) => (covers(parseGtidPos(a), parseGtidPos(b)) ? 1 : -1));
  return later[0];
}

/** The newest state any archived segment reaches, and every hole between the oldest file and it. */
export function archiveReach(files: readonly ArchivedFile[]): { newest: string; gaps: Gap[] } {
  const usable = files.map((f) => ({ f, ...usableSegments(f) })).filter((u) => u.segments.length > 0 || u.cut);
  if (usable.length === 0) return { newest: '', gaps: [] };
  // Start at the oldest file (the one whose start every other start covers).
  const oldest = [...usable].sort((a, b) => (covers(parseGtidPos(a.f.fileStart), parseGtidPos(b.f.fileStart)) ? 1 : -1))[0]!;
  const newest = files
    .flatMap((f) => f.segments.map((s) => s.endGtid))
    .reduce((acc, s) => (covers(parseGtidPos(acc), parseGtidPos(s)) ? acc : s), oldest.f.fileStart);
  const gaps: Gap[] = [];
  let at = oldest.f.fileStart;
  for (let i = 0; i <= files.length; i++) {
    const r = replayRuns(files, at, newest);
    if ('runs' in r) return { newest, gaps };
    gaps.push(r.gap);
    // Past the hole: go on from the next file start after it.
    const next = nextStart(usable, r.gap.after);
    if (next === undefined || covers(parseGtidPos(at), parseGtidPos(next))) return { newest, gaps };
    at = next;
  }
  return { newest, gaps };
}
