// Lines of a log file, optionally followed like `tail -F`: across logrotate's rename-and-create
// (a new inode at the path) and copytruncate (the file shrinks; as with tail, a truncated file that
// regrows past the read position between two polls is not noticed). Polling, not fs.watch: it works
// the same on every file system, and a quarter second is plenty for a person reading logs.
// Optionally the rotated files logrotate leaves next to it are read first, oldest first, so that
// a backup's lines are all found after a rotation.
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { createInterface } from 'node:readline';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

export { ROTATED_FILES } from './log-filter.js';

const POLL_MS = 250;
const CHUNK = 64 * 1024;

export interface FollowOptions {
  follow: boolean;
  signal?: AbortSignal;
  /** Called once when the existing content has been read (before following). */
  onCaughtUp?: () => void;
  /**
   * First read up to this many rotated predecessors, oldest first: `<path>.N`, or `<path>.N.gz`
   * (decompressed) where there is no `<path>.N`, for N = 1… (logrotate's names without dateext;
   * `.N` and `.N.gz` side by side means gzip is still writing the `.gz`). Default 0.
   */
  rotated?: number;
  /** A rotated file that cannot be read, or not to its end (e.g. a truncated .gz); the others still are. */
  onSkipped?: (file: string, err: unknown) => void;
}

export async function readLogFile(path: string, onLine: (line: string) => void, opts: FollowOptions): Promise<void> {
  let fh: FileHandle = await open(path, 'r');
  let ino = (await fh.stat()).ino;
  let pos = 0;
  let partial = '';
  let caughtUp = false;
  let rotated = false;
  const buf = Buffer.alloc(CHUNK);
  const emit = (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (l !== '') onLine(l);
  };
  try {
    if ((opts.rotated ?? 0) > 0) await readRotated(path, await fh.stat(), opts.rotated as number, onLine, opts.onSkipped);
    while (!opts.signal?.aborted) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        emit(buf.toString('utf8', 0, bytesRead));
        continue;
      }
      if (rotated) {
        // The old file is read to its end, including what was written just before the rotation.
        const next = await open(path, 'r').catch(() => undefined);
        if (next !== undefined) {
          await fh.close();
          fh = next;
          ino = (await fh.stat()).ino;
          pos = 0;
          rotated = false;
          continue;
        }
      }
      if (!caughtUp) {
        caughtUp = true;
        opts.onCaughtUp?.();
      }
      if (!opts.follow) break;
      await sleep(POLL_MS, opts.signal);
      const now = await stat(path).catch(() => undefined);
      if (now === undefined) continue; // rotated away, the new file is not there yet
      if (now.ino !== ino) rotated = true;
      else if (now.size < pos) {
        pos = 0;
      }
    }
    if (partial !== '') onLine(partial);
  } finally {
    await fh.close();
  }
}

const fileId = (s: Stats): string => `${s.dev}:${s.ino}`;

async function readRotated(
  path: string,
  current: Stats,
  max: number,
  onLine: (line: string) => void,
  onSkipped: FollowOptions['onSkipped'],
): Promise<void> {
  // Opened newest first, starting from the log file itself (already open): a rotation while this
  // runs then shows a file twice, under two names, and it is read once, rather than not at all.
  const seen = new Set([fileId(current)]);
  const files: { name: string; fh: FileHandle; gz: boolean }[] = [];
  try {
    for (let n = 1; n <= max; n++) {
      for (const [name, gz] of [
        [`${path}.${n}`, false],
        [`${path}.${n}.gz`, true],
      ] as const) {
        let fh: FileHandle;
        try {
          fh = await open(name, 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onSkipped?.(name, err);
          continue;
        }
        const st = await fh.stat();
        if (!st.isFile() || seen.has(fileId(st))) {
          await fh.close();
        } else {
          seen.add(fileId(st));
          files.push({ name, fh, gz });
        }
        break;
      }
    }
    for (const f of files.reverse()) await readWhole(f.name, f.fh, f.gz, onLine, onSkipped);
  } finally {
    await Promise.all(files.map((f) => f.fh.close()));
  }
}

async function readWhole(
  name: string,
  fh: FileHandle,
  gz: boolean,
  onLine: (line: string) => void,
  onSkipped: FollowOptions['onSkipped'],
): Promise<void> {
  const raw = fh.createReadStream({ autoClose: false, highWaterMark: CHUNK });
  const input: Readable = gz ? pipeline(raw, createGunzip(), () => {}) : raw;
  input.setEncoding('utf8');
  let partial = '';
  try {
    for await (const text of input as AsyncIterable<string>) {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l !== '') onLine(l);
    }
    if (partial !== '') onLine(partial);
  } catch (err) {
    // The lines before the damage are shown; a cut-off last line is not.
    onSkipped?.(name, err);
  }
}

export async function readLogStream(input: Readable, onLine: (line: string) => void): Promise<void> {
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of rl) if (line !== '') onLine(line);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
