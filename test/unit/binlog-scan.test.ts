// The binlog scanner on binlog bytes built event by event as MariaDB writes them (header, CRC32
// trailer), fed in any chunking.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BinlogFormatError, BinlogScanner } from '../../src/archive/binlog-scan.js';

const MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);

/** One event: 19-byte header, body, a 4-byte checksum (its value is not checked by the scanner). */
function event(type: number, time: number, server: number, body: Buffer, offset: number, flags = 0): Buffer {
  const size = 19 + body.length + 4;
  const h = Buffer.alloc(19);
  h.writeUInt32LE(time, 0);
  h.writeUInt8(type, 4);
  h.writeUInt32LE(server, 5);
  h.writeUInt32LE(size, 9);
  h.writeUInt32LE(offset + size, 13);
  h.writeUInt16LE(flags, 17);
  return Buffer.concat([h, body, Buffer.from([0xde, 0xad, 0xbe, 0xef])]);
}

function formatDescription(): Buffer {
  const b = Buffer.alloc(2 + 50 + 4 + 1 + 20 + 1);
  b.writeUInt16LE(4, 0);
  b.write('10.11.19-MariaDB-log', 2, 'latin1');
  b.writeUInt8(19, 56);
  b.writeUInt8(1, b.length - 1); // checksum algorithm: CRC32
  return b;
}

function gtidList(entries: [number, number, bigint][]): Buffer {
  const b = Buffer.alloc(4 + entries.length * 16);
  b.writeUInt32LE(entries.length, 0);
  entries.forEach(([d, s, n], i) => {
    b.writeUInt32LE(d, 4 + i * 16);
    b.writeUInt32LE(s, 8 + i * 16);
    b.writeBigUInt64LE(n, 12 + i * 16);
  });
  return b;
}

function gtid(seq: bigint, domain: number): Buffer {
  const b = Buffer.alloc(13);
  b.writeBigUInt64LE(seq, 0);
  b.writeUInt32LE(domain, 8);
  return b;
}

/** A file: header, Format_description, Gtid_list, then the given transactions, then maybe a Rotate. */
function binlog(opts: {
  start: [number, number, bigint][];
  txs: { domain: number; server: number; seq: bigint; time: number }[];
  rotateTo?: string;
}) {
  const parts: Buffer[] = [MAGIC];
  let at = 4;
  const add = (e: Buffer) => {
    parts.push(e);
    at += e.length;
    return at;
  };
  const ends: number[] = [];
  add(event(15, 1_700_000_000, 1, formatDescription(), at));
  add(event(163, 1_700_000_000, 1, gtidList(opts.start), at));
  for (const t of opts.txs) {
    add(event(162, t.time, t.server, gtid(t.seq, t.domain), at));
    add(event(2, t.time, t.server, Buffer.from('insert into t values (1)'), at));
    ends.push(add(event(16, t.time, t.server, Buffer.alloc(8), at))); // Xid
  }
  if (opts.rotateTo) {
    const body = Buffer.concat([Buffer.alloc(8), Buffer.from(opts.rotateTo, 'latin1')]);
    body.writeBigUInt64LE(4n, 0);
    add(event(4, 1_700_000_100, 1, body, at));
  }
  return { bytes: Buffer.concat(parts), ends };
}

const sample = binlog({
  start: [
    [0, 1, 41n],
    [1, 2, 7n],
  ],
  txs: [
    { domain: 0, server: 1, seq: 42n, time: 1_700_000_010 },
    { domain: 0, server: 1, seq: 43n, time: 1_700_000_020 },
    { domain: 1, server: 2, seq: 8n, time: 1_700_000_030 },
  ],
  rotateTo: 'mysql-bin.000008',
});

test('BinlogScanner: the same state however the bytes are cut', () => {
  for (const size of [1, 7, 19, 100, sample.bytes.length]) {
    const s = new BinlogScanner();
    for (let i = 0; i < sample.bytes.length; i += size) s.push(sample.bytes.subarray(i, i + size));
    assert.equal(s.state.fileStart, '0-1-41,1-2-7');
    assert.equal(s.state.end, sample.bytes.length);
    assert.equal(s.state.state, '0-1-43,1-2-8');
    assert.equal(s.state.closed, true);
    assert.equal(s.state.nextFile, 'mysql-bin.000008', `chunks of ${size}`);
  }
});

test('BinlogScanner: a partial event waits; whole events count', () => {
  const s = new BinlogScanner();
  const cut = (sample.ends[0] as number) + 5;
  s.push(sample.bytes.subarray(0, cut));
  assert.equal(s.state.end, sample.ends[0]);
  assert.equal(s.state.state, '0-1-42,1-2-7');
  assert.equal(s.state.closed, false);
  s.push(sample.bytes.subarray(cut));
  assert.equal(s.state.end, sample.bytes.length);
});

test('BinlogScanner: ranges carry their start and end states, first and last GTID and times', () => {
  const s = new BinlogScanner();
  s.push(sample.bytes.subarray(0, sample.ends[0]));
  const first = s.takeRange();
  assert.deepEqual(first, {
    from: 0,
    to: sample.ends[0],
    startGtid: '0-1-41,1-2-7',
    endGtid: '0-1-42,1-2-7',
    firstGtid: '0-1-42',
    lastGtid: '0-1-42',
    firstTime: 1_700_000_000,
    lastTime: 1_700_000_010,
  });
  s.push(sample.bytes.subarray(sample.ends[0]));
  const second = s.takeRange();
  assert.equal(second.from, sample.ends[0]);
  assert.equal(second.startGtid, '0-1-42,1-2-7');
  assert.equal(second.endGtid, '0-1-43,1-2-8');
  assert.equal(second.firstGtid, '0-1-43');
  assert.equal(second.lastGtid, '1-2-8');
  assert.equal(second.firstTime, 1_700_000_020);
});

test('BinlogScanner: resumes at an offset with the state reached there', () => {
  const at = sample.ends[1] as number;
  const s = new BinlogScanner({ at, state: '0-1-43,1-2-7', fileStart: '0-1-41,1-2-7' });
  s.push(sample.bytes.subarray(at));
  assert.equal(s.state.state, '0-1-43,1-2-8');
  const r = s.takeRange();
  assert.equal(r.from, at);
  assert.equal(r.startGtid, '0-1-43,1-2-7');
  assert.equal(r.firstGtid, '1-2-8');
});

test('BinlogScanner: bytes that are not a binlog are refused', () => {
  assert.throws(() => new BinlogScanner().push(Buffer.from('hello world, not a binlog')), BinlogFormatError);
});
