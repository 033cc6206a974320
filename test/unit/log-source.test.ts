// Reading a log file with the rotated files logrotate leaves next to it (what `logs` does
// without -f): order, .N before .N.gz, the bound, a file seen twice, a damaged .gz.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readLogFile, ROTATED_FILES } from '../../src/cli/log-source.js';

const logFile = () => join(mkdtempSync(join(tmpdir(), 'sb-logsrc-')), 'agent.log');

async function read(file: string, rotated: number) {
  const lines: string[] = [];
  const skipped: string[] = [];
  await readLogFile(file, (l) => lines.push(l), { follow: false, rotated, onSkipped: (name) => skipped.push(name) });
  return { lines, skipped };
}

test('rotated files: oldest first, .N.gz decompressed, .N preferred to .N.gz, at most `rotated` of them', async () => {
  const f = logFile();
  writeFileSync(f, 'now-1\nnow-2 (no newline)');
  writeFileSync(`${f}.1`, 'r1-a\nr1-b\n');
  writeFileSync(`${f}.1.gz`, gzipSync('stale: gzip still writing it\n'));
  writeFileSync(`${f}.2.gz`, gzipSync('r2-a\nr2-ü\n'));
  writeFileSync(`${f}.3`, 'r3\n');
  for (let n = 4; n <= ROTATED_FILES + 1; n++) writeFileSync(`${f}.${n}.gz`, gzipSync(`r${n}\n`));
  const older = Array.from({ length: ROTATED_FILES - 3 }, (_, i) => `r${ROTATED_FILES - i}`);
  assert.deepEqual(await read(f, ROTATED_FILES), {
    lines: [...older, 'r3', 'r2-a', 'r2-ü', 'r1-a', 'r1-b', 'now-1', 'now-2 (no newline)'],
    skipped: [],
  });
  assert.deepEqual((await read(f, 0)).lines, ['now-1', 'now-2 (no newline)']);
  assert.deepEqual((await read(f, 1)).lines, ['r1-a', 'r1-b', 'now-1', 'now-2 (no newline)']);
});

test('rotated files: one file under two names (a rotation while reading) is read once; a gap is skipped', async () => {
  const f = logFile();
  writeFileSync(f, 'current\n');
  linkSync(f, `${f}.1`);
  writeFileSync(`${f}.3`, 'three\n');
  assert.deepEqual(await read(f, 5), { lines: ['three', 'current'], skipped: [] });
});

test('rotated files: a truncated or bad .gz is reported, its complete lines shown, the others still read', async () => {
  const f = logFile();
  writeFileSync(f, 'current\n');
  const gz = gzipSync(Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join(''));
  writeFileSync(`${f}.1.gz`, gz.subarray(0, gz.length - 4)); // the trailer cut off
  writeFileSync(`${f}.2.gz`, 'not gzip\n');
  writeFileSync(`${f}.3`, 'three\n');
  const { lines, skipped } = await read(f, 5);
  assert.deepEqual(skipped, [`${f}.2.gz`, `${f}.1.gz`]);
  assert.equal(lines[0], 'three');
  assert.equal(lines.at(-1), 'current');
  const fromGz = lines.slice(1, -1);
  assert.deepEqual(
    fromGz,
    Array.from({ length: fromGz.length }, (_, i) => `line ${i}`),
    'a prefix, in order, no cut-off line',
  );
});
