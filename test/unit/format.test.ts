// Durations for people: one style in every view, each step rounded to what it shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, formatSeconds } from '../../src/format.js';

test('under a second: whole milliseconds', () => {
  assert.equal(formatDuration(0), '0 ms');
  assert.equal(formatDuration(31), '31 ms');
  assert.equal(formatDuration(31.4), '31 ms');
  assert.equal(formatDuration(999.4), '999 ms');
});

test('under a minute: seconds with one decimal; never "60.0 s"', () => {
  assert.equal(formatDuration(999.6), '1.0 s');
  assert.equal(formatDuration(2_345), '2.3 s');
  assert.equal(formatDuration(7_000), '7.0 s');
  assert.equal(formatDuration(59_940), '59.9 s');
  assert.equal(formatDuration(59_960), '1m00s');
});

test('under an hour: minutes and two-digit seconds; beyond: hours, minutes and seconds', () => {
  assert.equal(formatDuration(100_000), '1m40s');
  assert.equal(formatDuration(3_599_400), '59m59s');
  assert.equal(formatDuration(3_599_600), '1h00m00s');
  assert.equal(formatDuration(3_725_000), '1h02m05s');
  assert.equal(formatDuration(26 * 3_600_000), '26h00m00s');
  assert.equal(formatDuration(48 * 3_600_000 + 61_000), '48h01m01s');
});

test('a negative span keeps its sign; what is not a number is said as it is', () => {
  assert.equal(formatDuration(-1_500), '-1.5 s');
  assert.equal(formatDuration(Number.NaN), 'NaN');
});

test('what is known to the second reads in whole seconds, then as any duration', () => {
  assert.equal(formatSeconds(0), '0 s');
  assert.equal(formatSeconds(32), '32 s');
  assert.equal(formatSeconds(59.4), '59 s');
  assert.equal(formatSeconds(59.6), '1m00s');
  assert.equal(formatSeconds(100), '1m40s');
  assert.equal(formatSeconds(3725), '1h02m05s');
  assert.equal(formatSeconds(-3), '-3 s');
});
