// One run at a time of a daemon's look: a second call while one runs is dropped, a failure goes
// to onError, and the run in flight can be awaited.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { singleFlight } from '../../src/daemon/single-flight.js';

test('singleFlight: one run at a time; its failure goes to onError; inFlight until it ends', async () => {
  const errors: unknown[] = [];
  const f = singleFlight((err) => errors.push(err));
  let release!: () => void;
  let runs = 0;
  const slow = () => {
    runs++;
    return new Promise<void>((r) => (release = r));
  };
  assert.equal(f.run(slow), true);
  assert.equal(f.run(slow), false, 'dropped while one runs');
  const inFlight = f.inFlight();
  assert.ok(inFlight);
  release();
  await inFlight;
  assert.equal(f.inFlight(), undefined);
  assert.equal(runs, 1);
  assert.equal(
    f.run(() => Promise.reject(new Error('boom'))),
    true,
  );
  await f.inFlight();
  assert.equal((errors[0] as Error).message, 'boom');
  assert.equal(f.inFlight(), undefined);
});
