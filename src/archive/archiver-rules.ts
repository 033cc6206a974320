// The binlog archiver's decisions as data (README "Binlog archive"): when to cut a segment, which
// file of a master to stream first, how far behind the archive is, and when the master's own purge
// policy endangers a file not archived yet. Pure: unit-tested without a server or a store.
import { archiveReach, usableSegments, type ArchivedFile, type Segment } from './archive-index.js';
import { covers, parseGtidPos } from './gtid.js';

/** A segment is cut at the latest when this many bytes wait. */
export const CUT_BYTES = 16 * 1024 ** 2;

export interface Pending {
  /** Whole transactions not archived yet, in bytes. */
  bytes: number;
  /** Unix ms of the oldest of them: its event time, or when the archiver saw it if that is earlier. */
  oldestMs: number;
  /** The file is closed (Rotate/Stop) and these are its last bytes. */
  closed: boolean;
}

/** Cut now: whole transactions wait and (the oldest is cutAge old, or CUT_BYTES wait, or the file is closed). */
export function shouldCut(p: Pending, nowMs: number, cutAgeMs: number): boolean {
  if (p.bytes <= 0) return false;
  return p.closed || p.bytes >= CUT_BYTES || nowMs - p.oldestMs >= cutAgeMs;
}

/** The default cut age: a third of the lag bound, so a segment is stored well before the bound is reached. */
export const cutAgeOf = (maxLagMs: number): number => Math.max(1000, Math.floor(maxLagMs / 3));

/** One binlog file of the master (SHOW BINARY LOGS), with the GTID state it starts at (its Gtid_list). */
export interface MasterFile {
  name: string;
  start: string;
}

export interface StartChoice {
  /** The master's file to stream first. */
  file: string;
  /** Its index already in the archive: skip (and check) its stored bytes, go on after them. */
  resume?: { at: number; state: string; fileStart: string; index: ArchivedFile };
  /** A file the master no longer has although the archive needs it: the hole, named. */
  gap?: string;
  /** Why this file (for the log). */
  why: string;
}

const sameState = (a: string, b: string): boolean => covers(parseGtidPos(a), parseGtidPos(b)) && covers(parseGtidPos(b), parseGtidPos(a));

const endOf = (f: ArchivedFile): { at: number; state: string } => {
  const segs = usableSegments(f).segments;
  const last = segs.at(-1) as Segment | undefined;
  return last ? { at: last.offset + last.length, state: last.endGtid } : { at: 0, state: f.fileStart };
};

/** Older first: by start state, then by name (a reset restarts the numbering, never the GTIDs). */
function olderFirst(a: ArchivedFile, b: ArchivedFile): number {
  const sa = parseGtidPos(a.fileStart);
  const sb = parseGtidPos(b.fileStart);
  if (!sameState(a.fileStart, b.fileStart)) return covers(sa, sb) ? 1 : -1;
  return a.file < b.file ? -1 : a.file > b.file ? 1 : 0;
}

/**
 * Which file of this master (`masterFiles`, oldest first as SHOW BINARY LOGS lists them) the
 * archiver streams first:
 * - this host:port has files in the shard's archive and its newest one reaches the archive's newest
 *   state: that file again (resumed after its stored bytes) or, when it is closed, the next one;
 * - else (a failover: the archive's newest state came from another server, or this master's own
 *   files fell behind): the latest file of this master starting at or before that state;
 * - a new archive: the master's current (newest) file.
 * A file chosen that the master no longer has is a named gap; the archiver then starts at the
 * oldest file it has after it. A chosen file already archived is resumed, or skipped when closed.
 */
export function chooseStart(
  archive: readonly ArchivedFile[],
  me: { host: string; port: number; serverId: number },
  masterFiles: readonly MasterFile[],
): StartChoice {
  if (masterFiles.length === 0) throw new RangeError('the master lists no binary log (is log_bin on?)');
  const newestFile = masterFiles[masterFiles.length - 1] as MasterFile;
  if (archive.length === 0) return settle(archive, me, masterFiles, { file: newestFile.name, why: 'a new archive: the current file' });
  const { newest } = archiveReach(archive);
  const own = archive.filter((f) => f.host === me.host && f.port === me.port).sort(olderFirst);
  const mine = own.at(-1);
  if (mine && covers(parseGtidPos(endOf(mine).state), parseGtidPos(newest))) {
    const why = `this server's newest archived file ${mine.file}`;
    if (!mine.closed) return settle(archive, me, masterFiles, { file: mine.file, why: `${why}, resumed` });
    const next = masterFiles.find((f) => f.name > mine.file);
    // The next file starts where the closed one ended; a later start: the files between are gone.
    if (next && !covers(parseGtidPos(endOf(mine).state), parseGtidPos(next.start)))
      return settle(archive, me, masterFiles, {
        file: next.name,
        why: `the oldest file after ${why}`,
        gap: `the binlogs of ${me.host}:${me.port} after ${mine.file} (${endOf(mine).state}) up to ${next.name} (${next.start}) are gone: purged before they were archived`,
      });
    if (next) return settle(archive, me, masterFiles, { file: next.name, why: `the file after ${why}` });
    return { file: newestFile.name, why: `the current file (after ${why})` };
  }
  const reached = parseGtidPos(newest);
  const candidates = masterFiles.filter((f) => covers(reached, parseGtidPos(f.start)));
  const pick = candidates.at(-1);
  if (pick)
    return settle(archive, me, masterFiles, {
      file: pick.name,
      why: `the latest file starting at or before the archive's newest state ${newest}`,
    });
  const oldest = masterFiles[0] as MasterFile;
  return settle(archive, me, masterFiles, {
    file: oldest.name,
    why: 'the oldest file the master has',
    gap: `the archive ends at ${newest || 'its start'} and every binlog of ${me.host}:${me.port} starts after it (the oldest, ${oldest.name}, at ${oldest.start || 'the start'}): purged before they were archived`,
  });
}

/** The chosen file as the master has it: resumed when archived already, skipped when closed, a gap when gone. */
function settle(
  archive: readonly ArchivedFile[],
  me: { host: string; port: number; serverId: number },
  masterFiles: readonly MasterFile[],
  choice: StartChoice,
): StartChoice {
  let i = masterFiles.findIndex((f) => f.name === choice.file);
  if (i === -1) {
    const later = masterFiles.findIndex((f) => f.name > choice.file);
    i = later === -1 ? masterFiles.length - 1 : later;
    const gap = `${choice.file} of ${me.host}:${me.port} is needed but the master no longer has it (purged before it was archived)`;
    choice = {
      file: (masterFiles[i] as MasterFile).name,
      why: `${choice.why}; went on from the oldest file after it`,
      gap: choice.gap ?? gap,
    };
  }
  for (; i < masterFiles.length; i++) {
    const f = masterFiles[i] as MasterFile;
    const index = archive.find((a) => a.host === me.host && a.port === me.port && a.file === f.name && sameState(a.fileStart, f.start));
    if (index === undefined) return { ...choice, file: f.name };
    if (!index.closed || i === masterFiles.length - 1) {
      const end = endOf(index);
      return { ...choice, file: f.name, resume: { ...end, fileStart: index.fileStart, index } };
    }
    // Closed and archived: the next one.
  }
  return choice;
}

export interface LagInputs {
  /** The newest state the archive holds from this master's stream ('' when nothing yet). */
  archived: string;
  /** The master's @@gtid_binlog_pos. */
  masterPos: string;
  /** Unix ms of the oldest event seen but not archived yet (undefined: the stream has none pending). */
  oldestPendingMs: number | undefined;
  /** Unix ms when the archive was last seen to hold the master's position (undefined: never). */
  caughtUpAtMs: number | undefined;
  /**
   * Unix ms of the last event this stream archived (undefined: none yet). An event the stream has
   * not delivered yet was written after it, so the lag is at most the time since.
   */
  lastArchivedEventMs?: number | undefined;
  /** When the archiver started (the bound while it has never caught up). */
  startedAtMs: number;
  nowMs: number;
}

/**
 * Seconds the archive is behind the master: 0 when it holds @@gtid_binlog_pos; else the age of
 * the oldest unarchived event the stream has; else (the stream has not delivered it yet) an upper
 * bound: the time since the archive last held the master's position or since the last event it
 * archived, whichever is nearer (since the archiver started when neither is known).
 */
export function archiveLagSeconds(i: LagInputs): number {
  if (i.masterPos === '' || covers(parseGtidPos(i.archived), parseGtidPos(i.masterPos))) return 0;
  const known = [i.caughtUpAtMs, i.lastArchivedEventMs].filter((t): t is number => t !== undefined);
  const since = i.oldestPendingMs ?? (known.length > 0 ? Math.max(...known) : i.startedAtMs);
  return Math.max(0, (i.nowMs - since) / 1000);
}

/**
 * The master's purge policy could take a file before it is archived: the file the archiver still
 * needs is the master's oldest and was opened more than half the policy ago. `policyS` is
 * binlog_expire_logs_seconds (or expire_logs_days in seconds); 0: the master never purges by age.
 */
export function purgeRisk(i: {
  neededFile: string;
  oldestFile: string;
  fileOpenedMs: number;
  policyS: number;
  nowMs: number;
}): string | undefined {
  if (i.policyS <= 0 || i.neededFile !== i.oldestFile || i.fileOpenedMs <= 0) return undefined;
  const ageS = (i.nowMs - i.fileOpenedMs) / 1000;
  if (ageS < i.policyS / 2) return undefined;
  return (
    `${i.neededFile} is the master's oldest binlog, opened ${Math.round(ageS)} s ago, and is not archived yet: ` +
    `its purge policy (${i.policyS} s) could remove it before the archive has it`
  );
}
