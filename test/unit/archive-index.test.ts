// The binlog archive as data: which segments a replay needs across files and a failover, and the
// holes named when an object is missing or bytes were never archived.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { archiveReach, replayRuns, type ArchivedFile, type Segment } from '../../src/archive/archive-index.js';
import { archivedFileOf, segmentOf } from '../support/archive-fixtures.js';

const seg = segmentOf;

function file(host: string, name: string, fileStart: string, segments: Segment[], missing: string[] = []): ArchivedFile {
  return archivedFileOf({ host, file: name, fileStart, segments, missing, serverId: host === 'a' ? 1 : 2 });
}

// Server a: two files, the second in two segments; then a failover to b, whose file starts
// before a's end (b replicated a's events with log_slave_updates) and goes on with its own.
const a1 = file('a', 'bin.000001', '0-1-10', [seg(0, 100, '0-1-10', '0-1-20')]);
const a2 = file('a', 'bin.000002', '0-1-20', [seg(0, 100, '0-1-20', '0-1-30'), seg(100, 50, '0-1-30', '0-1-35')]);
const b1 = file('b', 'bin.000009', '0-1-25', [seg(0, 300, '0-1-25', '0-2-50')]);

const names = (r: ReturnType<typeof replayRuns>) =>
  'runs' in r ? r.runs.map((x) => `${x.file.host}:${x.file.file}[${x.segments.length}] ${x.startGtid}→${x.stopGtid}`) : r.gap.reason;

test('replayRuns: from a backup position to a point within one server', () => {
  assert.deepEqual(names(replayRuns([a1, a2], '0-1-15', '0-1-32')), ['a:bin.000001[1] 0-1-15→0-1-32', 'a:bin.000002[2] 0-1-20→0-1-32']);
  // The point inside the first segment of a file: only that segment (with the file's header).
  assert.deepEqual(names(replayRuns([a1, a2], '0-1-15', '0-1-28')), ['a:bin.000001[1] 0-1-15→0-1-28', 'a:bin.000002[1] 0-1-20→0-1-28']);
  assert.deepEqual(names(replayRuns([a1, a2], '0-1-30', '0-1-30')), []);
});

test('replayRuns: across a failover, the new master goes on from where the old one ended', () => {
  assert.deepEqual(names(replayRuns([b1, a1, a2], '0-1-15', '0-2-45')), [
    'a:bin.000001[1] 0-1-15→0-2-45',
    'a:bin.000002[2] 0-1-20→0-2-45',
    'b:bin.000009[1] 0-1-35→0-2-45',
  ]);
});

test('replayRuns: a missing object is a gap naming it; so are bytes never archived', () => {
  const gone = file('a', 'bin.000002', '0-1-20', a2.segments, ['000000000100.zst']);
  const r = replayRuns([a1, gone], '0-1-15', '0-1-34');
  assert.ok('gap' in r);
  assert.equal(r.gap.after, '0-1-30');
  assert.match(r.gap.reason, /bin\.000002 of a:3306: .*000000000100\.zst is missing/);
  // Before the hole the same archive serves.
  assert.ok('runs' in replayRuns([a1, gone], '0-1-15', '0-1-29'));

  const holed = file('a', 'bin.000002', '0-1-20', [seg(0, 100, '0-1-20', '0-1-30'), seg(120, 30, '0-1-31', '0-1-35')]);
  const h = replayRuns([a1, holed], '0-1-15', '0-1-34');
  assert.ok('gap' in h);
  assert.match(h.gap.reason, /bytes 100…120 were never archived/);
});

test('replayRuns: a file purged before it was archived is a gap between the files around it', () => {
  const a3 = file('a', 'bin.000003', '0-1-40', [seg(0, 100, '0-1-40', '0-1-50')]);
  const r = replayRuns([a1, a2, a3], '0-1-15', '0-1-45');
  assert.ok('gap' in r);
  assert.deepEqual([r.gap.after, r.gap.before], ['0-1-35', '0-1-40']);
  assert.match(r.gap.reason, /no archived binlog holds the events after 0-1-35 up to 0-1-40/);
});

test('archiveReach: the newest state and every hole from the oldest file on', () => {
  assert.deepEqual(archiveReach([a2, b1, a1]), { newest: '0-2-50', gaps: [] });
  const a3 = file('a', 'bin.000003', '0-1-40', [seg(0, 100, '0-1-40', '0-1-50')]);
  const r = archiveReach([a1, a2, a3]);
  assert.equal(r.newest, '0-1-50');
  assert.deepEqual(
    r.gaps.map((g) => [g.after, g.before]),
    [['0-1-35', '0-1-40']],
  );
  assert.deepEqual(archiveReach([]), { newest: '', gaps: [] });
});
