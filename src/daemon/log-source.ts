// Lines of a log file, optionally followed like `tail -F`: across logrotate's rename-and-create
// (a new inode at the path) and copytruncate (the file shrinks; as with tail, a truncated file that
// regrows past the read position between two polls is not noticed). Polling, not fs.watch: it works
// the same on every file system, and a quarter second is plenty for a person reading logs.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

const POLL_MS = 250;
const CHUNK = 64 * 1024;

export interface FollowOptions {
  follow: boolean;
  signal?: AbortSignal;
  /** Called once when the existing content has been read (before following). */
  onCaughtUp?: () => void;
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
