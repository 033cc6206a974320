// Holes in the binlog archive as the restore side meets them: a start inside a missing object, a cut the replay does not need.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { archiveReach, replayRuns, type ArchivedFile, type Segment } from '../../src/archive/archive-index.js';
import { segmentOf } from '../support/archive-fixtures.js';

// A file of 100-byte segments, each given by its end state; ['0-1-30', 'missing'] is listed but gone.
function file(name: string, fileStart: string, ends: (string | [string, 'missing'])[]): ArchivedFile {
  let start = fileStart;
  const segments: Segment[] = [];
  const missing: string[] = [];
  ends.forEach((e, i) => {
    const [end, gone] = Array.isArray(e) ? e : [e, undefined];
    const object = `${String(i * 100).padStart(12, '0')}.zst`;
    segments.push(segmentOf(i * 100, 100, start, end, { storedBytes: 50 }));
    if (gone) missing.push(object);
    start = end;
  });
  return {
    format: 1,
    shard: 0,
    host: 'h0',
    port: 3306,
    serverId: 1,
    file: name,
    fileStart,
    closed: true,
    segments,
    folder: `f/${name}/`,
    missing,
  };
}

test('replayRuns: a start inside a missing object names that object, not a purge or the end of the archive', () => {
  const files = [file('b.1', '0-1-0', ['0-1-10', '0-1-20']), file('b.2', '0-1-20', [['0-1-30', 'missing'], '0-1-40'])];
  const r = replayRuns(files, '0-1-25', '0-1-40');
  assert.ok('gap' in r);
  assert.equal(r.gap.after, '0-1-25');
  assert.equal(r.gap.reason, 'b.2 of h0:3306: f/b.2/000000000000.zst is missing');
});

test('replayRuns: a cut in an older file the replay does not need is not named', () => {
  const files = [
    file('b.1', '0-1-0', ['0-1-10', ['0-1-20', 'missing']]),
    file('b.2', '0-1-20', ['0-1-30', '0-1-40']),
    file('b.3', '0-1-40', ['0-1-50']),
  ];
  const ok = replayRuns(files, '0-1-25', '0-1-50');
  assert.ok('runs' in ok);
  assert.deepEqual(
    ok.runs.map((r) => [r.file.file, r.startGtid]),
    [
      ['b.2', '0-1-25'],
      ['b.3', '0-1-40'],
    ],
  );
  const end = replayRuns(files, '0-1-25', '0-1-60');
  assert.ok('gap' in end);
  assert.equal(end.gap.reason, 'the archive ends at 0-1-50');
});

test('archiveReach: the hole of a missing first segment is named after the state before it', () => {
  const files = [file('b.1', '0-1-0', ['0-1-10', '0-1-20']), file('b.2', '0-1-20', [['0-1-30', 'missing'], '0-1-40'])];
  const r = archiveReach(files);
  assert.equal(r.newest, '0-1-40');
  assert.deepEqual(
    r.gaps.map((g) => [g.after, g.reason]),
    [['0-1-20', 'b.2 of h0:3306: f/b.2/000000000000.zst is missing']],
  );
});
