// `npm test`: every built test file (dist/test/**/*.test.js) through node's test runner, three files
// at a time, the longest first. `node --test FILES` sorts the files by name whatever order they are
// given in, which left the longest files (restore-*, status-archive) to start last and run side by
// side at the end of the suite; run() keeps the order given, so the long ones start at once and
// the short ones fill the slots around them.
//
// Usage (after `npm run build`): node --test-timeout=300000 dist/scripts/run-tests.js [FILE...]
// (node passes its own --test-* flags on to each file's process); no FILE: every test file.
// Exit code 1 when any test failed, as `node --test`.
import { readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

const TEST_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'test');
const CONCURRENCY = 3;
/**
 * A whole file's bound, only against a hang: every integration test has its own timeout inside its
 * file, and a long file on a loaded machine (other suites beside it) takes more than 5 minutes.
 */
const TIMEOUT_MS = 900_000;

/**
 * Files (relative to dist/test, without .test.js) that take longest in a full run on a 2-core
 * machine, longest first; every other file follows by name. Measured, not exact: a file missing
 * here only starts later.
 */
export const LONGEST_FIRST = [
  'restore-archive',
  'restore-to-point',
  'recovery-agent',
  'restore-point',
  'auto-points',
  'drill-restore',
  'recovery-command',
  'repository-read',
  'partial-answers',
  'binlog-archive',
  'drill',
  'recovery-archive',
  'sandbox',
  'daemon',
  'scale',
  'host-truth',
  'check',
  'sandbox-side-by-side',
  'any-node',
  'bounds',
  'status-archive',
  'release',
  'repository-s3',
];

/** `files` (paths ending in .test.js) with those of LONGEST_FIRST first, in its order, then the rest by name. */
export function testOrder(files: readonly string[], root = TEST_DIR): string[] {
  const rank = (f: string) => {
    const i = LONGEST_FIRST.indexOf(relative(root, f).replace(/\.test\.js$/, ''));
    return i === -1 ? LONGEST_FIRST.length : i;
  };
  return [...files].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

function main(): void {
  const given = process.argv.slice(2).map((f) => resolve(f));
  const files = testOrder(given.length > 0 ? given : testFiles(TEST_DIR));
  const stream = run({ files, concurrency: CONCURRENCY, timeout: TIMEOUT_MS });
  stream.on('test:fail', () => {
    process.exitCode = 1;
  });
  stream.compose(new spec()).pipe(process.stdout);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
