// The repository's rate limit on a virtual clock: how long transfers take is computed, not timed,
// so the test is exact and instant. One budget is shared by every transfer of the process; an
// idle spell saves up only a tenth of a second's worth; big chunks pass in slices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as tick } from 'node:timers/promises';
import { RateLimiter, throttle, type Clock } from '../../src/repo/rate-limit.js';

const MiB = 1024 ** 2;

/** A clock whose sleeps end when `run` moves time to them, earliest first. */
class VirtualClock implements Clock {
  t = 0;
  private sleepers: { at: number; wake: () => void }[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((wake) => this.sleepers.push({ at: this.t + ms, wake }));
  }
  /** Lets the streams work; whenever all of them wait, jumps to the next wake-up. Until `work` settles. */
  async run<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    const result = work.finally(() => (settled = true));
    while (!settled) {
      await tick();
      if (settled) break;
      if (this.sleepers.length === 0) continue;
      this.sleepers.sort((a, b) => a.at - b.at);
      const next = this.sleepers.shift() as { at: number; wake: () => void };
      this.t = Math.max(this.t, next.at);
      next.wake();
    }
    return result;
  }
}

function source(bytes: number, chunk: number): Readable {
  let left = bytes;
  return new Readable({
    read() {
      if (left === 0) return this.push(null);
      const n = Math.min(chunk, left);
      left -= n;
      this.push(Buffer.alloc(n, 1));
    },
  });
}

/** Bytes out of every transfer of a test so far, and the most that was ever ahead of the budget. */
interface Tally {
  bytes: number;
  ahead: number;
}

/** Sends through the limiter; the bytes and the largest piece that came out, and when it finished. */
async function send(limiter: RateLimiter, clock: VirtualClock, bytes: number, chunk: number, tally: Tally = { bytes: 0, ahead: 0 }) {
  let got = 0;
  let largest = 0;
  await pipeline(
    source(bytes, chunk),
    throttle(limiter),
    new Writable({
      write(c: Buffer, _e, done) {
        got += c.length;
        tally.bytes += c.length;
        tally.ahead = Math.max(tally.ahead, tally.bytes - (clock.now() * limiter.bytesPerSecond) / 1000);
        largest = Math.max(largest, c.length);
        done();
      },
    }),
  );
  return { got, largest, at: clock.now() };
}

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-6 * Math.max(1, expected), `${what}: ${actual} ms, expected ${expected} ms`);

test('one transfer: after the first tenth of a second (the burst), bytes pass at the rate; big chunks in slices', async () => {
  const clock = new VirtualClock();
  const limiter = new RateLimiter(MiB, clock);
  const r = await clock.run(send(limiter, clock, 10 * MiB, 4 * MiB));
  assert.equal(r.got, 10 * MiB);
  assert.ok(r.largest <= limiter.slice, `a ${r.largest}-byte piece passed at once (slice ${limiter.slice})`);
  close(r.at, ((10 * MiB - limiter.burst) / MiB) * 1000, '10 MiB at 1 MiB/s');
});

test('transfers at the same time share the one budget: together they never exceed it', async () => {
  const clock = new VirtualClock();
  const limiter = new RateLimiter(20 * MiB, clock);
  const tally: Tally = { bytes: 0, ahead: 0 };
  const [a, b, c] = await clock.run(
    Promise.all([
      send(limiter, clock, 30 * MiB, 65536, tally),
      send(limiter, clock, 30 * MiB, MiB + 16, tally),
      send(limiter, clock, 10 * MiB, 1000, tally),
    ]),
  );
  assert.deepEqual([a?.got, b?.got, c?.got], [30 * MiB, 30 * MiB, 10 * MiB]);
  const last = Math.max(a?.at ?? 0, b?.at ?? 0, c?.at ?? 0);
  close(last, ((70 * MiB - limiter.burst) / (20 * MiB)) * 1000, '70 MiB at 20 MiB/s in three transfers');
  // At no moment were the three together more than the burst ahead of the rate.
  assert.ok(tally.ahead <= limiter.burst + 1e-6, `${tally.ahead} bytes ahead of the budget (burst ${limiter.burst})`);
  // Each got a share all along: none waited for another to finish.
  assert.ok(Math.min(a?.at ?? 0, b?.at ?? 0) > 0.5 * last, `finished at ${a?.at} and ${b?.at} of ${last} ms`);
});

test('an idle spell saves up one burst, no more', async () => {
  const clock = new VirtualClock();
  const limiter = new RateLimiter(MiB, clock);
  await clock.run(send(limiter, clock, 2 * MiB, 65536));
  clock.t += 100_000;
  const start = clock.now();
  const r = await clock.run(send(limiter, clock, 2 * MiB, 65536));
  close(r.at - start, ((2 * MiB - limiter.burst) / MiB) * 1000, '2 MiB after 100 s idle');
});

test('a rate below the smallest slice still flows, in 1 KiB pieces', async () => {
  const clock = new VirtualClock();
  const limiter = new RateLimiter(1024, clock);
  const r = await clock.run(send(limiter, clock, 10 * 1024, 4096));
  assert.equal(r.got, 10 * 1024);
  assert.equal(r.largest, 1024);
  close(r.at, 9000, '10 KiB at 1 KiB/s');
  assert.throws(() => new RateLimiter(0), RangeError);
});
