// One upload of the repository bench in a process of its own, so its peak resident set (VmHWM)
// is the upload's alone. argv: a JSON Job. Prints a JSON UploadResult on stdout.
import { createWriteStream, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RepositoryConfig } from '../../src/config/repository.js';
import { encryptStream, loadRepoKey } from '../../src/repo/encryption.js';
import { RateLimiter, throttle } from '../../src/repo/rate-limit.js';
import { openRepository, upload } from '../../src/repo/repository.js';

export interface Job {
  /** `swift`: through the repository into its store; `null`: the same stages into /dev/null. */
  to: 'swift' | 'null';
  config: RepositoryConfig;
  bytes: number;
  key: string;
}

export interface UploadResult {
  seconds: number;
  /** Until the last byte went into the upload (the rest is the last part's own upload). */
  feedSeconds: number;
  cpuSeconds: number;
  peakRssKiB: number;
  /** Resident set before the upload began (the SDK loaded, the source's pool allocated). */
  startRssKiB: number;
}

const MiB = 1024 ** 2;
const job = JSON.parse(process.argv[2] as string) as Job;

/** `bytes` incompressible bytes (as zstd's output is) in 256 KiB chunks, from a 32 MiB pool: no cost of its own. */
function source(bytes: number, pool: Buffer): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) return this.push(null);
      const n = Math.min(256 * 1024, bytes - sent);
      const at = (sent * 7) % (pool.length - n);
      sent += n;
      this.push(pool.subarray(at, at + n));
    },
  });
}

const status = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);

const pool = randomBytes(32 * MiB);
const repo = await openRepository(job.config, []);
const startRssKiB = status('VmRSS');
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let lastByte = t0;
if (job.to === 'swift') await upload(repo, job.key, source(job.bytes, pool), { onBytes: () => (lastByte = performance.now()) });
else
  await pipeline([
    source(job.bytes, pool),
    ...(job.config.encryptionKeyFile ? [encryptStream(loadRepoKey(job.config.encryptionKeyFile))] : []),
    ...(job.config.rateLimit ? [throttle(new RateLimiter(job.config.rateLimit))] : []),
    createWriteStream('/dev/null'),
  ]);
const seconds = (performance.now() - t0) / 1000;
const feedSeconds = job.to === 'swift' ? (lastByte - t0) / 1000 : seconds;
const cpu = process.cpuUsage(cpu0);
if (job.to === 'swift') await repo.store.remove([job.key]);
const result: UploadResult = { seconds, feedSeconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssKiB: status('VmHWM'), startRssKiB };
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
