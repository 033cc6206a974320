// `[repository] rate_limit`: one budget of bytes per second shared by every transfer of this
// process. To be built (token bucket).
import { PassThrough, type Transform } from 'node:stream';

export class RateLimiter {
  constructor(readonly bytesPerSecond: number) {}
}

export function throttle(limiter: RateLimiter): Transform {
  void limiter;
  return new PassThrough();
}
