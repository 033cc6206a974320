// Rolling a restored shard forward past XA transactions, line by line over mariadb-binlog's text
// output. A *dump* holds committed rows only, so an XA transaction Spider had prepared but not
// committed at the dump's position is missing from it, and its XA COMMIT in the replay would find
// no XID: the output is decoded from before the start position, every transaction group at or
// before the start GTID is dropped except the XA PREPARE groups still pending there, and those are
// prepared again before the rest is replayed (the carry). The other way round, a copy can already
// hold an XA prepared whose PREPARE group the replay would apply again (XAER_DUPID): a physical copy
// whose recorded position lags a prepare it holds (seen once from a replica's backup): those XIDs
// (`alreadyPrepared`, from XA RECOVER on the copy) have their first PREPARE group after the start
// dropped; their COMMIT is replayed. Pure line processing.
import { Transform, type TransformCallback } from 'node:stream';
import { seqOf, type GtidState } from '../archive/gtid.js';

const GTID_HEADER = /\tGTID (\d+)-\d+-(\d+)\b/;
/** Events between transactions (file headers, rotates): always passed. */
const NEUTRAL_HEADER = /\t(Start: binlog|Rotate to|Gtid list|Binlog checkpoint)/;
const XA_PREPARE = /^XA PREPARE (.+)$/;
const XA_START = /^XA START (X'[0-9A-Fa-f]*',X'[0-9A-Fa-f]*',\d+)/;
const XA_END_OF = /^XA (?:COMMIT|ROLLBACK) (X'[0-9A-Fa-f]*',X'[0-9A-Fa-f]*',\d+)/;
/**
 * Session settings mariadb-binlog prints only when they change (default database, sql_mode,
 * character sets, and the GTID's server_id and domain, as versioned comments): kept from dropped
 * groups, so what follows runs — and is binlogged with the GTIDs — as it was on the shard.
 */
const SESSION_STATE =
  /^(use `.*`\/\*!\*\/;|SET @@session\.(?!gtid_seq_no)[a-z_]+=.*\/\*!\*\/;|\/\*M?!\d+ SET @@session\.(?!gtid_seq_no)[a-z_]+=.*\*\/\/\*!\*\/;|\/\*!\\C \S+ \*\/\/\*!\*\/;)$/;

export class XaCarry {
  private chunk: string[] = [];
  private group: { before: boolean; lines: string[] } | undefined;
  /** XA PREPARE groups at or before the start whose end was not seen yet, by XID. */
  private readonly pending = new Map<string, string[]>();
  private released = false;
  private trailer = false;
  /** XA transactions prepared again (pending at the start position). */
  carried = 0;
  /** PREPARE groups not applied because the copy already held that XA prepared. */
  skipped = 0;
  private readonly carry: boolean;
  private readonly alreadyPrepared: Set<string>;

  constructor(
    private readonly start: GtidState,
    private readonly emit: (text: string) => void,
    opts: { carry?: boolean; alreadyPrepared?: Iterable<string> } = {},
  ) {
    this.carry = opts.carry ?? true;
    // Hex digits in either case: compared in lower case.
    this.alreadyPrepared = new Set([...(opts.alreadyPrepared ?? [])].map((x) => x.toLowerCase()));
  }

  line(l: string): void {
    if (this.trailer) return this.emit(`${l}\n`);
    if (l.startsWith('# at ') || l === 'DELIMITER ;') this.endChunk();
    if (l === 'DELIMITER ;') {
      this.flushGroup();
      this.trailer = true;
      return this.emit(`${l}\n`);
    }
    this.chunk.push(l);
  }

  end(): void {
    this.endChunk();
    this.flushGroup();
  }

  private endChunk(): void {
    const chunk = this.chunk;
    this.chunk = [];
    if (chunk.length === 0) return;
    const header = chunk[1] ?? '';
    const gtid = chunk[0]?.startsWith('# at ') ? GTID_HEADER.exec(header) : null;
    if (gtid) {
      this.flushGroup();
      const before = BigInt(gtid[2] as string) <= seqOf(this.start, Number(gtid[1]));
      this.group = { before, lines: chunk };
    } else if (!this.group || NEUTRAL_HEADER.test(header)) {
      this.flushGroup();
      this.emit(`${chunk.join('\n')}\n`);
    } else {
      this.group.lines.push(...chunk);
    }
  }

  private flushGroup(): void {
    const g = this.group;
    this.group = undefined;
    if (!g) return;
    if (!g.before) {
      this.release();
      // Committed or rolled back before being prepared again: the copy's own, whose XID Spider may reuse later.
      for (const l of g.lines) {
        const ended = XA_END_OF.exec(l)?.[1];
        if (ended !== undefined) this.alreadyPrepared.delete(ended.toLowerCase());
      }
      const xid =
        this.alreadyPrepared.size === 0 ? undefined : g.lines.map((l) => XA_START.exec(l)?.[1]?.toLowerCase()).find((x) => x !== undefined);
      if (xid !== undefined && this.alreadyPrepared.delete(xid)) {
        this.skipped++;
        this.emitState(g.lines);
        return;
      }
      this.emit(`${g.lines.join('\n')}\n`);
      return;
    }
    this.emitState(g.lines);
    for (const l of g.lines) {
      const ended = XA_END_OF.exec(l);
      if (ended) this.pending.delete(ended[1] as string);
      const prepared = XA_PREPARE.exec(l);
      if (prepared) this.pending.set((prepared[1] as string).trim(), g.lines);
    }
  }

  /** A dropped group's session settings, so what follows runs as it did on the shard. */
  private emitState(lines: readonly string[]): void {
    const state = lines.filter((l) => SESSION_STATE.test(l));
    if (state.length > 0) this.emit(`${state.join('\n')}\n`);
  }

  /** Before the first group after the start: the transactions still prepared there. */
  private release(): void {
    if (this.released) return;
    this.released = true;
    if (!this.carry) return;
    for (const lines of this.pending.values()) {
      this.carried++;
      this.emit(`${lines.join('\n')}\n`);
    }
    this.pending.clear();
  }
}

/** XaCarry as a stream: mariadb-binlog's stdout in, the filtered statements out. */
export function xaCarryStream(
  start: GtidState,
  opts: { carry?: boolean; alreadyPrepared?: Iterable<string> } = {},
): { stream: Transform; carry: XaCarry } {
  let rest = '';
  // latin1 both ways: the bytes pass unchanged (BINLOG base64, any charset in statements). The
  // stream exists before the first line is emitted.
  const carry = new XaCarry(start, (text) => stream.push(Buffer.from(text, 'latin1')), opts);
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      const text = rest + chunk.toString('latin1');
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) carry.line(l);
      done();
    },
    flush(done: TransformCallback) {
      if (rest !== '') carry.line(rest);
      carry.end();
      done();
    },
  });
  return { stream, carry };
}
