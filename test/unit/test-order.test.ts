// The order `npm test` starts the test files in (scripts/run-tests.ts): the longest first, as
// LONGEST_FIRST lists them, then the rest by name; and every name listed is a test file that exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LONGEST_FIRST, testOrder } from '../../scripts/run-tests.js';

const testDir = join(dirname(fileURLToPath(import.meta.url)), '..');

test('the files LONGEST_FIRST names come first, in its order; the rest follow by name', () => {
  const f = (name: string) => join('/t', `${name}.test.js`);
  const order = testOrder([f('unit/b'), f(LONGEST_FIRST[1]!), f('a'), f(LONGEST_FIRST[0]!), f('unit/a')], '/t');
  assert.deepEqual(order, [f(LONGEST_FIRST[0]!), f(LONGEST_FIRST[1]!), f('a'), f('unit/a'), f('unit/b')]);
});

test('every file LONGEST_FIRST names exists, once', () => {
  assert.equal(new Set(LONGEST_FIRST).size, LONGEST_FIRST.length);
  for (const name of LONGEST_FIRST) assert.ok(existsSync(join(testDir, `${name}.test.js`)), `dist/test/${name}.test.js`);
});
