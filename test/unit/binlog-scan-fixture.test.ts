// BinlogScanner on a real binary log (test/fixtures/xa-myisam.binlog): fed in chunks of any size,
// its committed ranges end only where a transaction ends (a segment never splits one, XA and
// MyISAM groups included), each GTID is in exactly one of them, and the Rotate closes the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BinlogScanner, type ScannedRange } from '../../src/archive/binlog-scan.js';

const here = dirname(fileURLToPath(import.meta.url));
const FILE = readFileSync(join(here, '../../../test/fixtures/xa-myisam.binlog'));
/** Where each transaction's group ends in the fixture (from `mariadb-binlog` of it), and the file's events before any. */
const BOUNDARIES = [328, 451, 623, 795, 965, 1167, 1428, 1558, 1725, 1986, 2118, 2274, 2522, 2750];

function scanCommitted(chunk: number): { ranges: ScannedRange[]; scanner: BinlogScanner } {
  const scanner = new BinlogScanner();
  const ranges: ScannedRange[] = [];
  for (let i = 0; i < FILE.length; i += chunk) {
    scanner.push(FILE.subarray(i, i + chunk));
    const c = scanner.peekCommitted();
    if (c.to > c.from) ranges.push(scanner.takeCommitted());
  }
  return { ranges, scanner };
}

test('committed ranges end at transaction boundaries whatever the chunk size; each GTID once', () => {
  for (const chunk of [1, 7, 37, 100, 512, 4096]) {
    const { ranges, scanner } = scanCommitted(chunk);
    assert.equal(scanner.state.closed, true);
    assert.equal(scanner.state.nextFile, 'mysql-bin.000002');
    assert.equal(scanner.state.end, FILE.length);
    assert.equal(scanner.state.committedEnd, FILE.length);
    assert.equal(scanner.state.state, '0-7-13');
    assert.ok(scanner.state.fileTime > 0);
    // Contiguous from 0 to the end.
    assert.equal(ranges[0]?.from, 0);
    for (let k = 1; k < ranges.length; k++) assert.equal(ranges[k]!.from, ranges[k - 1]!.to, `chunk ${chunk}`);
    assert.equal(ranges.at(-1)?.to, FILE.length);
    for (const r of ranges) if (r.to !== FILE.length) assert.ok(BOUNDARIES.includes(r.to) || r.to < 328, `chunk ${chunk}: cut at ${r.to}`);
    // Each GTID in exactly one range, in order, and a range's end state follows its last GTID.
    const seen = ranges.flatMap((r) => (r.firstGtid === '' ? [] : [Number(r.firstGtid.split('-')[2]), Number(r.lastGtid.split('-')[2])]));
    const firsts = ranges.filter((r) => r.firstGtid !== '').map((r) => Number(r.firstGtid.split('-')[2]));
    const lasts = ranges.filter((r) => r.lastGtid !== '').map((r) => Number(r.lastGtid.split('-')[2]));
    assert.equal(firsts[0], 1);
    assert.equal(lasts.at(-1), 13);
    for (let k = 1; k < firsts.length; k++) assert.equal(firsts[k], lasts[k - 1]! + 1, `chunk ${chunk}: ${seen.join(',')}`);
    for (const r of ranges) if (r.lastGtid !== '') assert.equal(r.endGtid, r.lastGtid);
  }
});

test('an open transaction stays pending: the committed part stops before its GTID event, with its own times', () => {
  const scanner = new BinlogScanner();
  // Up to the middle of the prepared XA's group (1167…1428).
  scanner.push(FILE.subarray(0, 1300));
  assert.equal(scanner.state.committedEnd, 1167);
  const c = scanner.takeCommitted();
  assert.deepEqual([c.from, c.to, c.firstGtid, c.lastGtid, c.endGtid], [0, 1167, '0-7-1', '0-7-5', '0-7-5']);
  const pending = scanner.peekRange();
  assert.equal(pending.from, 1167);
  assert.equal(pending.firstGtid, '0-7-6');
  assert.equal(pending.startGtid, '0-7-5');
  assert.ok(pending.firstTime > 0);
  assert.equal(scanner.peekCommitted().to, 1167, 'nothing committed yet after the take');
  scanner.push(FILE.subarray(1300));
  const rest = scanner.takeCommitted();
  assert.deepEqual([rest.from, rest.to, rest.firstGtid, rest.lastGtid, rest.startGtid], [1167, FILE.length, '0-7-6', '0-7-13', '0-7-5']);
});

test('takeRange takes the whole events, the open transaction included', () => {
  const scanner = new BinlogScanner();
  scanner.push(FILE.subarray(0, 1300));
  const all = scanner.takeRange();
  assert.equal(all.to, scanner.state.end);
  assert.equal(all.lastGtid, '0-7-6');
  assert.equal(scanner.peekCommitted().to, all.to);
});
