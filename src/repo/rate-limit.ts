// `[repository] rate_limit`: one budget of bytes per second shared by every transfer of this
// process (uploads, the binlog archive, downloads for restores), as a token bucket. A transfer
// takes tokens before passing bytes on; when the bucket is short it waits for exactly the
// missing tokens. Takers queue by going into debt: each waits for its own share in turn, so
// transfers at the same time split the budget and together never exceed it.
import { setTimeout as sleep } from 'node:timers/promises';
import { Transform, type TransformCallback } from 'node:stream';

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = { now: () => performance.now(), sleep: (ms) => sleep(ms) };

export class RateLimiter {
  /** Bytes that may pass at once after an idle spell: a tenth of a second's worth. */
  readonly burst: number;
  /** The largest piece passed on at once, so big chunks (1 MiB segments) flow evenly too. */
  readonly slice: number;
  private tokens: number;
  private last: number;

  constructor(
    readonly bytesPerSecond: number,
    private readonly clock: Clock = realClock,
  ) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`rate limit must be above 0 bytes/s (got ${bytesPerSecond})`);
    this.burst = Math.max(1024, bytesPerSecond / 10);
    this.slice = Math.min(256 * 1024, Math.max(1024, Math.floor(bytesPerSecond / 20)));
    this.tokens = this.burst;
    this.last = clock.now();
  }

  /** Resolves when `bytes` may pass. */
  async take(bytes: number): Promise<void> {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.tokens -= bytes;
    if (this.tokens < 0) await this.clock.sleep((-this.tokens * 1000) / this.bytesPerSecond);
  }
}

/** Passes the bytes through within `limiter`'s budget, big chunks in slices. */
export function throttle(limiter: RateLimiter): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      void (async () => {
        for (let at = 0; at < chunk.length; at += limiter.slice) {
          const piece = chunk.subarray(at, at + limiter.slice);
          await limiter.take(piece.length);
          if (this.destroyed) return;
          this.push(piece);
        }
      })().then(() => done(), done);
    },
  });
}
