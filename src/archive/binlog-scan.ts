// Reads MariaDB binlog bytes (as a replica receives them, as `mariadb-binlog --raw` writes them)
// just far enough to archive them: where each whole event ends, the GTIDs and event times, the
// Gtid_list a file starts with, whether a Rotate closed it, and where the last whole transaction
// ends (a segment cut there never splits one). Event bodies are skipped (but a Query event's text
// after a GTID, to see its COMMIT), so a 1 GiB file costs one pass over its headers. Pure: fed
// Buffers, no I/O.
import { parseGtidPos } from './gtid.js';

const MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const HEADER = 19;
const QUERY = 2;
const STOP = 3;
const ROTATE = 4;
const XID = 16;
const XA_PREPARE = 38;
const FORMAT_DESCRIPTION = 15;
const GTID = 162;
const GTID_LIST = 163;
/** An event made up by the sender (the Rotate that names the file at the start of a dump). */
const ARTIFICIAL = 0x20;
/** A GTID event's flags2: its group is the one event after it (DDL). */
const FL_STANDALONE = 1;
/** Query texts that end a transaction's event group (a MyISAM one, XA COMMIT/ROLLBACK of a prepared XA). */
const GROUP_END = /^\s*(COMMIT|ROLLBACK|XA\s+COMMIT|XA\s+ROLLBACK)\b(?!\s+TO\b)/i;

export class BinlogFormatError extends Error {
  override readonly name = 'BinlogFormatError';
}

/** What the whole events seen so far say. Offsets are byte positions in the binlog file. */
export interface ScanState {
  /** The file's Gtid_list (its start state, '0-1-41,1-2-7'); undefined until it was read. */
  fileStart: string | undefined;
  /** Whole events end here: bytes up to this offset can be archived. */
  end: number;
  /** GTID state after the last whole event (the file's start state plus every GTID seen). */
  state: string;
  /** Events seen (the file header and Format_description included). */
  events: number;
  /** A Rotate to the next file or a Stop was seen: no event follows in this file. */
  closed: boolean;
  /** The next file's name when a Rotate closed it. */
  nextFile?: string;
  /** Bytes up to here hold whole transactions only (no event group is open at this offset). */
  committedEnd: number;
  /** Unix seconds of the file's Format_description (when the server opened it); 0 until seen. */
  fileTime: number;
}

/** One run of whole events between two offsets, as archived in a segment. */
export interface ScannedRange {
  from: number;
  to: number;
  /** State before the first event of the range and after its last. */
  startGtid: string;
  endGtid: string;
  /** First and last GTID of a transaction in the range ('d-s-n'), '' when none. */
  firstGtid: string;
  lastGtid: string;
  /** Unix seconds of the first and last event with a time (0: none). */
  firstTime: number;
  lastTime: number;
}

/**
 * Feed it a binlog file's bytes in order (`push`), from offset 0 or from `resumeAt` (the end of an
 * earlier scan, with its state). Only whole events count; a partial one waits for more bytes.
 */
export class BinlogScanner {
  private pending: Buffer = Buffer.alloc(0);
  /** Offset of pending[0] in the file. */
  private base: number;
  private readonly gtids = new Map<number, { server: number; seq: bigint }>();
  private readonly s: ScanState;
  private range: ScannedRange;
  /** The part of `range` up to the end of its last whole transaction (what takeCommitted returns). */
  private committed: ScannedRange;
  /** Events end in a CRC32 (the Format_description says so). */
  private checksum = false;
  /** Inside a transaction's event group (after its GTID event); `standalone`: it is one event. */
  private group: { standalone: boolean } | undefined;
  /** First/last GTID and times of the events after the committed part (the open transaction). */
  private tail: Partial<ScannedRange> = {};

  constructor(resume?: { at: number; state: string; fileStart: string }) {
    this.base = resume?.at ?? 0;
    this.s = {
      fileStart: resume?.fileStart,
      end: this.base,
      state: resume?.state ?? '',
      events: 0,
      closed: false,
      committedEnd: this.base,
      fileTime: 0,
    };
    for (const [d, seq] of parseGtidPos(resume?.state ?? '')) this.gtids.set(d, { server: serverOf(resume?.state ?? '', d), seq });
    this.range = this.emptyRange();
    this.committed = { ...this.range };
  }

  get state(): Readonly<ScanState> {
    return this.s;
  }

  /** The whole events since the last `takeRange` (or the start). */
  peekRange(): Readonly<ScannedRange> {
    return this.range;
  }

  /** The whole events since the last call, and a new range starts after them. */
  takeRange(): ScannedRange {
    const r = this.range;
    this.range = this.emptyRange();
    this.committed = { ...this.range };
    return r;
  }

  /** The whole transactions since the last take (a prefix of peekRange; empty while one is open). */
  peekCommitted(): Readonly<ScannedRange> {
    return this.committed;
  }

  /**
   * The whole transactions since the last take, and a new range starts after them; the events of
   * a transaction still open stay pending (with their GTID and times).
   */
  takeCommitted(): ScannedRange {
    const c = this.committed;
    const r = this.range;
    // The rest: the open transaction's events, which began after the committed part.
    this.range = { ...r, from: c.to, startGtid: c.endGtid, firstGtid: '', lastGtid: '', firstTime: 0, lastTime: 0, ...this.tail };
    this.committed = { ...this.range, to: c.to, endGtid: c.endGtid, firstGtid: '', lastGtid: '', firstTime: 0, lastTime: 0 };
    return c;
  }

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    if (this.base === 0 && this.s.events === 0 && this.s.end === 0) {
      if (this.pending.length < MAGIC.length) return;
      if (!this.pending.subarray(0, 4).equals(MAGIC)) throw new BinlogFormatError('not a binlog file (no magic number at its start)');
      at = MAGIC.length;
      this.s.end = MAGIC.length;
      this.range.to = MAGIC.length;
    }
    while (this.pending.length - at >= HEADER) {
      const size = this.pending.readUInt32LE(at + 9);
      if (size < HEADER) throw new BinlogFormatError(`event at offset ${this.base + at} claims ${size} bytes`);
      if (this.pending.length - at < size) break;
      this.event(this.pending.subarray(at, at + size), this.base + at);
      at += size;
    }
    this.pending = this.pending.subarray(at);
    this.base += at;
  }

  private event(ev: Buffer, offset: number): void {
    const time = ev.readUInt32LE(0);
    const type = ev.readUInt8(4);
    const server = ev.readUInt32LE(5);
    const flags = ev.readUInt16LE(17);
    const body = ev.subarray(HEADER);
    this.s.events++;
    const r = this.range;
    if (r.to === r.from) r.startGtid = this.s.state;
    let endsGroup = false;
    if (type === FORMAT_DESCRIPTION) {
      // Its last 5 bytes: the checksum algorithm (1 = CRC32) and its own checksum.
      this.checksum = ev.length >= HEADER + 57 + 5 && ev.readUInt8(ev.length - 5) === 1;
      if (this.s.fileTime === 0) this.s.fileTime = time;
    } else if (type === GTID_LIST && this.s.fileStart === undefined) {
      this.s.fileStart = gtidListOf(body);
      for (const [d, g] of parseEntries(body)) this.gtids.set(d, g);
      this.s.state = this.render();
      r.startGtid = r.to === r.from || r.startGtid === '' ? this.s.state : r.startGtid;
    } else if (type === GTID) {
      const seq = body.readBigUInt64LE(0);
      const domain = body.readUInt32LE(8);
      this.gtids.set(domain, { server, seq });
      const g = `${domain}-${server}-${seq}`;
      if (r.firstGtid === '') r.firstGtid = g;
      r.lastGtid = g;
      this.s.state = this.render();
      this.group = { standalone: body.length > 12 && (body.readUInt8(12) & FL_STANDALONE) !== 0 };
      this.tail = { firstGtid: g, lastGtid: g };
    } else if ((type === ROTATE && (flags & ARTIFICIAL) === 0 && time !== 0) || type === STOP) {
      this.s.closed = true;
      if (type === ROTATE) this.s.nextFile = body.subarray(8, body.length - (this.checksum ? 4 : 0)).toString('latin1');
    }
    if (type !== GTID && this.group)
      endsGroup = this.group.standalone || type === XID || type === XA_PREPARE || (type === QUERY && GROUP_END.test(this.queryText(body)));
    if (time !== 0 && type !== FORMAT_DESCRIPTION) {
      if (r.firstTime === 0) r.firstTime = time;
      r.lastTime = time;
      if (this.group) {
        if (this.tail.firstTime === undefined || this.tail.firstTime === 0) this.tail.firstTime = time;
        this.tail.lastTime = time;
      }
    }
    this.s.end = offset + ev.length;
    r.to = this.s.end;
    r.endGtid = this.s.state;
    if (endsGroup) this.group = undefined;
    if (this.group === undefined) {
      // No transaction open after this event: everything so far is whole transactions.
      this.committed = { ...r };
      this.s.committedEnd = this.s.end;
      this.tail = {};
    }
  }

  /** The statement of a Query event ('' when it cannot be read). */
  private queryText(body: Buffer): string {
    // Post-header: thread id 4, exec time 4, db length 1, error code 2, status vars length 2.
    if (body.length < 13) return '';
    const dbLen = body.readUInt8(8);
    const varsLen = body.readUInt16LE(11);
    const at = 13 + varsLen + dbLen + 1;
    const end = body.length - (this.checksum ? 4 : 0);
    return at < end ? body.subarray(at, Math.min(end, at + 40)).toString('latin1') : '';
  }

  private emptyRange(): ScannedRange {
    return {
      from: this.s.end,
      to: this.s.end,
      startGtid: this.s.state,
      endGtid: this.s.state,
      firstGtid: '',
      lastGtid: '',
      firstTime: 0,
      lastTime: 0,
    };
  }

  private render(): string {
    return [...this.gtids.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([d, g]) => `${d}-${g.server}-${g.seq}`)
      .join(',');
  }
}

function parseEntries(body: Buffer): Map<number, { server: number; seq: bigint }> {
  const count = body.readUInt32LE(0) & 0x0fffffff;
  const out = new Map<number, { server: number; seq: bigint }>();
  for (let i = 0; i < count; i++) {
    const at = 4 + i * 16;
    if (at + 16 > body.length) throw new BinlogFormatError('a Gtid_list event shorter than its count');
    const domain = body.readUInt32LE(at);
    const server = body.readUInt32LE(at + 4);
    const seq = body.readBigUInt64LE(at + 8);
    const had = out.get(domain);
    if (!had || had.seq < seq) out.set(domain, { server, seq });
  }
  return out;
}

/** The Gtid_list as a GTID position text (highest per domain). */
function gtidListOf(body: Buffer): string {
  return [...parseEntries(body).entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([d, g]) => `${d}-${g.server}-${g.seq}`)
    .join(',');
}

function serverOf(text: string, domain: number): number {
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(part);
    if (m && Number(m[1]) === domain) return Number(m[2]);
  }
  return 0;
}
