import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binlogRange, covers, mergeGtidPos, parseGtidPos } from '../../src/archive/gtid.js';

test('parseGtidPos: lists, brackets, empty; a bad part is named', () => {
  assert.deepEqual(
    parseGtidPos('0-1-42,1-2-7'),
    new Map([
      [0, 42n],
      [1, 7n],
    ]),
  );
  assert.deepEqual(parseGtidPos('[0-1-5]'), new Map([[0, 5n]]));
  assert.equal(parseGtidPos('').size, 0);
  assert.equal(parseGtidPos('[]').size, 0);
  assert.throws(() => parseGtidPos('0-1-x'), /not a GTID: "0-1-x"/);
});

const files = [
  { name: 'b.000003', start: parseGtidPos('0-1-100') },
  { name: 'b.000004', start: parseGtidPos('0-1-200') },
  { name: 'b.000005', start: parseGtidPos('0-1-300') },
];
const now = parseGtidPos('0-1-350');

test('binlogRange: the files holding (from, to]', () => {
  assert.deepEqual(binlogRange(files, now, parseGtidPos('0-1-150'), parseGtidPos('0-1-250')), { files: ['b.000003', 'b.000004'] });
  assert.deepEqual(binlogRange(files, now, parseGtidPos('0-1-200'), parseGtidPos('0-1-320')), { files: ['b.000004', 'b.000005'] });
  assert.deepEqual(binlogRange(files, now, parseGtidPos('0-1-120'), parseGtidPos('0-1-120')), { files: [] });
});

test('binlogRange: purged files and a point the server has not reached are named', () => {
  const r = binlogRange(files, now, parseGtidPos('0-1-50'), parseGtidPos('0-1-150'));
  assert.deepEqual(r.gone, { oldestKept: 'b.000003', domains: [0] });
  assert.deepEqual(r.files, ['b.000003']);
  assert.deepEqual(binlogRange(files, now, parseGtidPos('0-1-300'), parseGtidPos('0-1-400')).notReached, [0]);
});

test('mergeGtidPos: per domain the higher sequence number, each part as written; covers judges the result', () => {
  assert.equal(mergeGtidPos('0-1-42,1-2-7', '0-3-40,1-2-9,2-5-1'), '0-1-42,1-2-9,2-5-1');
  assert.equal(mergeGtidPos('', '0-1-5'), '0-1-5');
  assert.equal(mergeGtidPos('0-1-5', ''), '0-1-5');
  const m = parseGtidPos(mergeGtidPos('0-1-42', '1-2-7'));
  assert.ok(covers(m, parseGtidPos('0-1-42')) && covers(m, parseGtidPos('1-2-7')));
  assert.equal(covers(parseGtidPos('0-1-41'), parseGtidPos('0-1-42')), false);
});
