// The repository's upload path (issue 18): a 1 GiB stream into a private Swift (s3api) on
// loopback through the repository's pipeline (encryption, rate limit, sha256, multipart upload)
// against the same stream written to /dev/null (ratio), with and without encryption; the
// achieved rate under `rate_limit = 20MiB`; and the uploading process's peak resident memory,
// which must not grow with the size of the file (parts are buffered, never files). Each upload
// runs in a fresh process (repository-upload.ts), so its peak is its own.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PART_SIZE, type RepositoryConfig } from '../../src/config/repository.js';
import { startSwift, type Swift } from '../../test/support/swift.js';
import { progress, type Row } from './report.js';
import type { Job, UploadResult } from './repository-upload.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const RATE = 20 * MiB;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'repository-upload.js');

function run(job: Job): Promise<UploadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(JSON.parse(out) as UploadResult);
      else reject(new Error(`${CHILD} exited with ${code}`));
    });
  });
}

const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
const speed = (bytes: number, s: number) => `${(bytes / MiB / s).toFixed(0)} MiB/s`;

export async function repositoryRows(opts: { bytes?: number } = {}): Promise<Row[]> {
  const bytes = opts.bytes ?? GiB;
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-repo-'));
  const keyFile = join(dir, 'repo.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  progress('repository: starting a private Swift (s3api)');
  let swift: Swift;
  try {
    swift = await startSwift();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    progress(`repository: ${(err as Error).message}`);
    return [{ what: 'repository upload to Swift', now: `not run: ${(err as Error).message.split('\n')[0]}`, target: '—' }];
  }
  const config = (over: Partial<RepositoryConfig> = {}): RepositoryConfig => ({
    file: join(dir, 'spiderbackup.ini'),
    store: swift.storeConfig(),
    prefix: 'bench',
    encryptionKeyFile: undefined,
    encryptionOldKeyFiles: [],
    rateLimit: undefined,
    partSize: DEFAULT_PART_SIZE,
    retentionKeep: undefined,
    retentionDays: undefined,
    ...over,
  });
  let n = 0;
  const job = (to: Job['to'], size: number, over: Partial<RepositoryConfig> = {}): Promise<UploadResult> =>
    run({ to, config: config(over), bytes: size, key: `bench/backups/b${++n}/db1_20000/dump.sql.zst` });
  const rows: Row[] = [];
  try {
    for (const [label, over] of [
      ['no encryption', {}],
      ['encrypted', { encryptionKeyFile: keyFile }],
    ] as const) {
      progress(`repository: ${mib(bytes)} to /dev/null, ${label}`);
      const nul = await job('null', bytes, over);
      progress(`repository: ${mib(bytes)} to Swift, ${label}`);
      const up = await job('swift', bytes, over);
      rows.push({
        what: `repository: ${mib(bytes)} upload to Swift on loopback (${label}, part_size ${mib(DEFAULT_PART_SIZE)}) vs /dev/null`,
        now:
          `${speed(bytes, up.seconds)} (${up.seconds.toFixed(1)} s, ${up.cpuSeconds.toFixed(1)} CPU-s) vs ${speed(bytes, nul.seconds)} ` +
          `(${nul.cpuSeconds.toFixed(1)} CPU-s): ${(nul.seconds / up.seconds).toFixed(2)} of /dev/null's speed`,
        target: 'the store is the bottleneck, not the pipeline',
      });
      rows.push({
        what: `repository: uploading process's peak RSS, ${mib(bytes)} (${label})`,
        now: `${mib(up.peakRssKiB * 1024)} (${mib(up.startRssKiB * 1024)} before the upload)`,
        target: `flat in the file size (parts of ${mib(DEFAULT_PART_SIZE)}, 2 at once)`,
      });
    }
    progress(`repository: ${mib(bytes / 4)} to Swift, no encryption (peak RSS against the file size)`);
    const small = await job('swift', bytes / 4);
    rows.push({
      what: `repository: uploading process's peak RSS, ${mib(bytes / 4)} (no encryption)`,
      now: `${mib(small.peakRssKiB * 1024)} (${mib(small.startRssKiB * 1024)} before the upload)`,
      target: `as for ${mib(bytes)}`,
    });
    const limitedBytes = 10 * RATE;
    for (const to of ['null', 'swift'] as const) {
      progress(`repository: ${mib(limitedBytes)} to ${to === 'null' ? '/dev/null' : 'Swift'} at rate_limit = 20MiB`);
      const lim = await job(to, limitedBytes, { rateLimit: RATE });
      const dev = (s: number) => {
        const achieved = limitedBytes / s;
        return `${(achieved / MiB).toFixed(1)} MiB/s (${achieved >= RATE ? '+' : ''}${(((achieved - RATE) / RATE) * 100).toFixed(1)} %)`;
      };
      rows.push({
        what: `repository: rate_limit = 20MiB, ${mib(limitedBytes)} to ${to === 'null' ? '/dev/null' : 'Swift'}`,
        now:
          to === 'null'
            ? dev(lim.seconds)
            : `${dev(lim.feedSeconds)} into the upload; ${dev(lim.seconds)} end to end (with the last part's own upload)`,
        target: 'within ±15 % of 20 MiB/s',
      });
    }
  } finally {
    await swift.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
