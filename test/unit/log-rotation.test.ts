// Log rotation with the real logrotate binary (Debian package logrotate; scripts/install.sh
// installs it): a long-lived writer that logs through src/log.ts, like a backup's supervisor,
// moves to the new file by itself, and `logs` (readLogFile with the rotated files) finds every
// line of a backup id across rotations, compressed or not. No timing assertions: each step waits
// for an answer from the writer or for a condition, with a bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { matches, parseLine } from '../../src/cli/log-filter.js';
import { readLogFile, ROTATED_FILES } from '../../src/cli/log-source.js';
import { MISSING_GRACE_MS, REOPEN_RETRY_MS } from '../../src/log.js';
import type { WriterReply, WriterRequest } from '../support/log-writer.js';

const here = dirname(fileURLToPath(import.meta.url));
const WRITER = join(here, '../support/log-writer.js');
const CLI = join(here, '../../src/bin/cli.js');
const STEP_MS = 10_000;
const TEST = {
  timeout: 60_000,
  skip:
    spawnSync('logrotate', ['--version'], { stdio: 'ignore' }).status === 0
      ? false
      : 'logrotate is not installed (scripts/install.sh installs it)',
};

async function until(what: string, fn: () => boolean, timeoutMs = STEP_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

class Writer {
  private stderr = '';
  private constructor(readonly child: ChildProcess) {
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  static async start(file: string, flags: string[] = []): Promise<Writer> {
    const w = new Writer(fork(WRITER, ['--file', file, ...flags], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }));
    await w.ask(undefined, 'ready');
    return w;
  }

  /** Sends m (if any) and waits for the reply that has `key`. */
  private ask<K extends string>(m: WriterRequest | undefined, key: K): Promise<Extract<WriterReply, Record<K, unknown>>> {
    const child = this.child;
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`log-writer: no "${key}" answer within ${STEP_MS} ms; stderr: ${this.stderr}`));
      }, STEP_MS);
      const onMessage = (r: WriterReply) => {
        if (!(key in r)) return;
        done();
        resolve(r as Extract<WriterReply, Record<K, unknown>>);
      };
      const onExit = (code: number | null, signal: string | null) => {
        done();
        reject(new Error(`log-writer exited (${code ?? signal}); stderr: ${this.stderr}`));
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
      if (m !== undefined) child.send(m);
    });
  }

  /** Logs one line; resolves with its seq once it is written. */
  async line(backupId: string, msg = 'line'): Promise<number> {
    return (await this.ask({ line: msg, backupId }, 'done')).done;
  }

  every(ms: number, backupId: string): void {
    this.child.send({ every: ms, backupId } satisfies WriterRequest);
  }

  /** Stops the timer; resolves with the last seq written. */
  async stop(): Promise<number> {
    return (await this.ask({ stop: true }, 'stopped')).stopped;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }
}

/** A private logrotate setup for `file`: its own state file and config. */
function logrotateFor(file: string, directives: string[]): () => void {
  const d = dirname(file);
  const conf = join(d, 'logrotate.conf');
  writeFileSync(conf, `${file} {\n${directives.map((l) => `  ${l}\n`).join('')}  missingok\n  nomail\n}\n`);
  return () => {
    const r = spawnSync('logrotate', ['-f', '-s', join(d, 'logrotate.state'), conf], { encoding: 'utf8' });
    assert.equal(r.status, 0, `logrotate failed: ${r.stderr}`);
    // e.g. "destination … already exists, renaming to ….backup" if a writer recreated the file too early
    assert.equal(r.stderr, '', 'logrotate has nothing to complain about');
  };
}

/** The seq of every complete line of a log file, plain or gzipped, in file order. */
function seqs(path: string): number[] {
  if (!existsSync(path)) return [];
  const raw = readFileSync(path);
  const text = (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { seq: number }).seq);
}

/** What `spiderbackup logs --backup-id` reads: the file and its rotated files, filtered. */
async function backupLines(file: string, backupId: string): Promise<number[]> {
  const out: number[] = [];
  const skipped: string[] = [];
  await readLogFile(
    file,
    (line) => {
      const p = parseLine(line);
      if (matches(p, { backupId }) && p.kind === 'json') out.push(p.record.seq as number);
    },
    { follow: false, rotated: ROTATED_FILES, onSkipped: (name) => skipped.push(name) },
  );
  assert.deepEqual(skipped, [], 'every rotated file was read');
  return out;
}

function cliLogs(file: string, backupId: string): number[] {
  const r = spawnSync(process.execPath, [CLI, 'logs', '--file', file, '--backup-id', backupId, '--json'], {
    encoding: 'utf8',
    timeout: STEP_MS,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { seq: number }).seq);
}

/** The files under `prefix` that process pid has open (Linux). */
function openFiles(pid: number, prefix: string): string[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((p) => p.startsWith(prefix))
    .sort();
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const backups = (file: string) => readdirSync(dirname(file)).filter((n) => n.endsWith('.backup'));
const logFile = () => join(mkdtempSync(join(tmpdir(), 'sb-logrot-')), 'agent.log');

test('logrotate create: the writer moves to the new file by itself; logs --backup-id finds every line across rotations', TEST, async () => {
  const file = logFile();
  const rotate = logrotateFor(file, ['rotate 3', 'create']);
  const w = await Writer.start(file);
  try {
    assert.deepEqual([await w.line('B1'), await w.line('B-other'), await w.line('B1')], [1, 2, 3]);
    assert.deepEqual(seqs(file), [1, 2, 3]);
    rotate();
    assert.deepEqual([seqs(`${file}.1`), seqs(file)], [[1, 2, 3], []]);
    await w.line('B1');
    assert.deepEqual([seqs(`${file}.1`), seqs(file)], [[1, 2, 3], [4]], 'the line after the rotation is in the new file');
    rotate();
    await w.line('B1');
    await w.line('B-other');
    assert.deepEqual([seqs(`${file}.2`), seqs(`${file}.1`), seqs(file)], [[1, 2, 3], [4], [5, 6]]);
    assert.deepEqual(backups(file), []);

    assert.deepEqual(await backupLines(file, 'B1'), [1, 3, 4, 5]);
    assert.deepEqual(await backupLines(file, 'B-other'), [2, 6]);
    assert.deepEqual(cliLogs(file, 'B1'), [1, 3, 4, 5], 'the logs command itself');
  } finally {
    w.kill();
  }
});

test('control: a destination that does not follow rotation writes on to the renamed file (the bug)', TEST, async () => {
  const file = logFile();
  const rotate = logrotateFor(file, ['rotate 3', 'create']);
  const w = await Writer.start(file, ['--no-follow']);
  try {
    await w.line('B1');
    rotate();
    await w.line('B1');
    assert.deepEqual([seqs(`${file}.1`), seqs(file)], [[1, 2], []]);
  } finally {
    w.kill();
  }
});

test('logrotate compress + delaycompress: lines in .1, .2.gz, .3.gz and the file, read oldest first', TEST, async () => {
  const file = logFile();
  const rotate = logrotateFor(file, ['rotate 3', 'create', 'compress', 'delaycompress']);
  const w = await Writer.start(file);
  try {
    for (let i = 0; i < 3; i++) {
      await w.line('B1');
      rotate();
    }
    await w.line('B1');
    assert.deepEqual([seqs(`${file}.3.gz`), seqs(`${file}.2.gz`), seqs(`${file}.1`), seqs(file)], [[1], [2], [3], [4]]);
    assert.ok(!existsSync(`${file}.1.gz`));
    assert.deepEqual(await backupLines(file, 'B1'), [1, 2, 3, 4]);
    // rotate 3: the oldest is gone after one more rotation
    rotate();
    await w.line('B1');
    assert.deepEqual(await backupLines(file, 'B1'), [2, 3, 4, 5]);
    assert.deepEqual(cliLogs(file, 'B1'), [2, 3, 4, 5]);
  } finally {
    w.kill();
  }
});

test('logrotate compress (no delaycompress): .1.gz is read', TEST, async () => {
  const file = logFile();
  const rotate = logrotateFor(file, ['rotate 3', 'create', 'compress']);
  const w = await Writer.start(file);
  try {
    await w.line('B1');
    rotate();
    await w.line('B1');
    assert.deepEqual([seqs(`${file}.1.gz`), seqs(file)], [[1], [2]]);
    assert.deepEqual(await backupLines(file, 'B1'), [1, 2]);
  } finally {
    w.kill();
  }
});

test(
  'a writer logging every 50 ms through two rotations: no line lost, none written to an older file after a newer one',
  TEST,
  async () => {
    const file = logFile();
    const rotate = logrotateFor(file, ['rotate 3', 'create']);
    const w = await Writer.start(file);
    try {
      w.every(50, 'B1');
      await until('3 lines in the file', () => seqs(file).length >= 3);
      rotate();
      await until('3 lines in the new file', () => seqs(file).length >= 3);
      rotate();
      await until('3 lines in the newest file', () => seqs(file).length >= 3);
      const last = await w.stop();
      const [older, old, current] = [seqs(`${file}.2`), seqs(`${file}.1`), seqs(file)];
      assert.ok(older.length > 0 && old.length > 0 && current.length > 0);
      assert.deepEqual([...older, ...old, ...current], range(1, last), 'each file continues where the older one ends');
      assert.deepEqual(await backupLines(file, 'B1'), range(1, last));
      assert.deepEqual(backups(file), []);
    } finally {
      w.kill();
    }
  },
);

test(
  'reopenOnSignals: SIGUSR2 moves the descriptor to the new file before any line, and does not end the process',
  { ...TEST, skip: TEST.skip || (existsSync('/proc/self/fd') ? false : 'no /proc') },
  async () => {
    const file = logFile();
    const rotate = logrotateFor(file, ['rotate 3', 'create']);
    const w = await Writer.start(file, ['--signals']);
    const openLogs = () => openFiles(w.child.pid as number, file);
    try {
      await w.line('B1');
      assert.deepEqual(openLogs(), [file]);
      rotate();
      await until('the rename seen through the descriptor', () => openLogs().join() === `${file}.1`);
      w.child.kill('SIGUSR2');
      await until('the new file open, the old one closed', () => openLogs().join() === file);
      assert.equal(await w.line('B1'), 2);
      assert.deepEqual([seqs(`${file}.1`), seqs(file)], [[1], [2]]);
      assert.ok(w.alive);
    } finally {
      w.kill();
    }
  },
);

test('a missing path is not recreated at once (logrotate creates it); after the grace period it is', { timeout: 60_000 }, async () => {
  const file = logFile();
  const w = await Writer.start(file);
  try {
    await w.line('B1');
    renameSync(file, `${file}.moved`);
    await w.line('B1');
    assert.ok(!existsSync(file), 'not recreated within the grace period');
    assert.deepEqual(seqs(`${file}.moved`), [1, 2]);
    await new Promise((r) => setTimeout(r, MISSING_GRACE_MS + 100));
    await w.line('B1');
    assert.deepEqual([seqs(`${file}.moved`), seqs(file)], [[1, 2], [3]]);
  } finally {
    w.kill();
  }
});

test(
  'a new file that cannot be opened: a warning in the old file, lines go on there; the next new file is taken',
  { timeout: 60_000, skip: existsSync('/proc/self/fd') ? false : 'no /proc' },
  async () => {
    const file = logFile();
    const w = await Writer.start(file);
    const records = (path: string) =>
      readFileSync(path, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { seq?: number; msg: string; level: number });
    try {
      await w.line('B1');
      renameSync(file, `${file}.1`);
      mkdirSync(file); // EISDIR when opened for writing, even as root
      await w.line('B1');
      await w.line('B1');
      const old = records(`${file}.1`);
      assert.deepEqual(
        old.map((r) => r.seq ?? r.msg),
        [1, 'cannot reopen the log file after rotation; writing on to the old one', 2, 3],
        'warned once, not per line',
      );
      rmdirSync(file);
      writeFileSync(file, ''); // may well get the directory's inode number
      await new Promise((r) => setTimeout(r, REOPEN_RETRY_MS + 100));
      await w.line('B1');
      assert.deepEqual(seqs(file), [4]);
      await until('only the new file open', () => openFiles(w.child.pid as number, file).join() === file);
    } finally {
      w.kill();
    }
  },
);
