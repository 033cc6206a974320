// MariaDB GTID positions ("0-1-42,1-2-7": one domain-server-seq per domain) as data. Pure.

/** Highest sequence number per replication domain. */
export type GtidState = ReadonlyMap<number, bigint>;

/** Parses a GTID position ('' or '[]' is the empty state). Throws a RangeError naming the bad part. */
export function parseGtidPos(text: string): GtidState {
  const out = new Map<number, bigint>();
  const body = text.trim().replace(/^\[/, '').replace(/\]$/, '').trim();
  if (body === '') return out;
  for (const part of body.split(',')) {
    const m = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(part);
    if (!m) throw new RangeError(`not a GTID: ${JSON.stringify(part)} in ${JSON.stringify(text)}`);
    const domain = Number(m[1]);
    const seq = BigInt(m[3] as string);
    if ((out.get(domain) ?? -1n) < seq) out.set(domain, seq);
  }
  return out;
}

export const seqOf = (s: GtidState, domain: number): bigint => s.get(domain) ?? 0n;

/** Whether `a` holds everything `b` does (every domain of `b` at or below `a`). */
export function covers(a: GtidState, b: GtidState): boolean {
  for (const [d, seq] of b) if ((a.get(d) ?? -1n) < seq) return false;
  return true;
}

/**
 * Per domain the higher sequence number of two positions, each part kept as written (its server
 * id too): what is held when both are. '' is the empty position.
 */
export function mergeGtidPos(a: string, b: string): string {
  if (a === '') return b;
  if (b === '') return a;
  const parts = new Map<number, { text: string; seq: bigint }>();
  for (const text of [...a.split(','), ...b.split(',')]) {
    const m = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(text);
    if (!m) continue;
    const d = Number(m[1]);
    const seq = BigInt(m[3] as string);
    if ((parts.get(d)?.seq ?? -1n) < seq) parts.set(d, { text: text.trim(), seq });
  }
  return [...parts.entries()]
    .sort((x, y) => x[0] - y[0])
    .map(([, v]) => v.text)
    .join(',');
}

/** Domains where `a` is ahead of `b`. */
export function aheadIn(a: GtidState, b: GtidState): number[] {
  return [...a.keys()].filter((d) => seqOf(a, d) > seqOf(b, d));
}

export interface BinlogFile {
  name: string;
  /** The GTID state at the file's start (its Gtid_list event): the file holds what comes after. */
  start: GtidState;
}

export interface BinlogRange {
  /** Files holding the events in (from, to], oldest first. */
  files: string[];
  /** The events right after `from` are no longer on the server: files older than `oldestKept` were purged. */
  gone?: { oldestKept: string; domains: number[] };
  /** The server's binlog has not reached `to` in these domains (a reset, or another server). */
  notReached?: number[];
}

/**
 * The binlog files a replay of (from, to] needs, from a server's files and its current position.
 * `from` empty: from the very first event.
 */
export function binlogRange(files: readonly BinlogFile[], current: GtidState, from: GtidState, to: GtidState): BinlogRange {
  const wanted = aheadIn(to, from);
  const range: BinlogRange = { files: [] };
  const notReached = wanted.filter((d) => seqOf(to, d) > seqOf(current, d));
  if (notReached.length > 0) range.notReached = notReached;
  if (files.length === 0 || wanted.length === 0) return range;
  const oldest = files[0] as BinlogFile;
  const gone = wanted.filter((d) => seqOf(oldest.start, d) > seqOf(from, d));
  if (gone.length > 0) range.gone = { oldestKept: oldest.name, domains: gone };
  files.forEach((f, i) => {
    const next = files[i + 1];
    // File i holds, per domain, the sequence numbers in (start_i, start_i+1] (the last one: up to now).
    const holds = wanted.some((d) => {
      const lo = seqOf(f.start, d);
      const hi = next ? seqOf(next.start, d) : seqOf(current, d);
      return hi > seqOf(from, d) && lo < seqOf(to, d) && hi > lo;
    });
    if (holds) range.files.push(f.name);
  });
  return range;
}
