// Rolls a restored shard forward: `mariadb-binlog` decodes the shard's binlog files between two
// GTID positions and the `mariadb` client applies them to the restored server. Both run from
// argument vectors (no shell); the client's password, if any, goes in a private option file, never
// on a command line. Used by the restore-point consistency test and `verify --restore-test
// --to-point`, which first copies the files from the shard master (fetchBinlogs).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGtidPos } from '../archive/gtid.js';
import { xaCarryStream } from './xa-carry.js';

/** Where the replayed statements go: a unix socket as root, or host/port/user/password. */
export type ReplayTarget = { socket: string; user?: string } | { host: string; port: number; user: string; password: string };

export interface ReplayOptions {
  /** The shard's binlog files, oldest first. */
  files: readonly string[];
  /** Replay the events after this GTID position (the base copy's); from the first file's start when absent. */
  startGtid?: string | undefined;
  /** Replay up to and including this GTID position (the restore point's). */
  stopGtid: string;
  /**
   * The base copy is a dump (committed rows only): XA transactions still prepared at startGtid are
   * prepared again from their XA PREPARE groups before the rest is replayed (xa-carry.ts).
   */
  carryPreparedXa?: boolean;
  /**
   * XIDs the target already holds prepared (XA RECOVER, as `X'…',X'…',format`): their first XA
   * PREPARE group after startGtid is not applied again (xa-carry.ts).
   */
  alreadyPrepared?: readonly string[];
  target: ReplayTarget;
  /** mariadb-binlog and mariadb executables (default: found in PATH). */
  binlogTool?: string;
  client?: string;
  /** Aborting stops both tools (the replay then rejects). */
  signal?: AbortSignal | undefined;
}

export class ReplayError extends Error {
  override readonly name = 'ReplayError';
}

/**
 * Applies the events in (startGtid, stopGtid] of `files` to `target`. Rejects with the tools'
 * stderr when either exits non-zero. XA transactions prepared inside the range and committed after
 * it stay prepared on the target, as they were on the shard at the point.
 */
export async function replayBinlog(opts: ReplayOptions): Promise<{ carriedXa: number; skippedXa: number }> {
  if (opts.files.length === 0) throw new ReplayError('replay: no binlog files given');
  const decodeArgs = ['--no-defaults', `--stop-position=${opts.stopGtid}`];
  const filter = opts.startGtid !== undefined && (opts.carryPreparedXa || (opts.alreadyPrepared?.length ?? 0) > 0);
  const carry = filter
    ? xaCarryStream(parseGtidPos(opts.startGtid as string), {
        carry: opts.carryPreparedXa ?? false,
        alreadyPrepared: opts.alreadyPrepared ?? [],
      })
    : undefined;
  // With the carry, the decode starts at the files' beginning and the filter drops what the copy holds.
  if (opts.startGtid && !carry) decodeArgs.push(`--start-position=${opts.startGtid}`);
  decodeArgs.push(...opts.files);

  const dir = mkdtempSync(join(tmpdir(), 'sb-replay-'));
  try {
    const clientArgs = clientArguments(opts.target, dir);
    const decoder = spawn(opts.binlogTool ?? 'mariadb-binlog', decodeArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    const client = spawn(opts.client ?? 'mariadb', clientArgs, { stdio: ['pipe', 'ignore', 'pipe'] });
    if (carry) decoder.stdout.pipe(carry.stream).pipe(client.stdin);
    else decoder.stdout.pipe(client.stdin);
    // The client exiting early (an error) closes its stdin: the decoder then gets EPIPE; report the client's error.
    client.stdin.on('error', () => {});
    // A client that stops early (its server gone, an error) leaves the decoder blocked on a full
    // pipe, and its output unread behind a paused filter keeps its 'close' from ever coming: the
    // decoder goes and what it wrote is dropped.
    client.once('close', () => {
      if (decoder.exitCode === null && decoder.signalCode === null) decoder.kill('SIGTERM');
      decoder.stdout.unpipe();
      carry?.stream.destroy();
      decoder.stdout.resume();
    });
    const stop = () => {
      for (const child of [decoder, client]) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    };
    if (opts.signal?.aborted) stop();
    opts.signal?.addEventListener('abort', stop, { once: true });
    const [d, c] = await Promise.all([exited(decoder, 'mariadb-binlog'), exited(client, 'mariadb')]).finally(() =>
      opts.signal?.removeEventListener('abort', stop),
    );
    if (opts.signal?.aborted) throw new ReplayError('replay: stopped');
    if (c.code !== 0) throw new ReplayError(`replay: mariadb exited ${c.code}: ${c.stderr.trim().slice(-2000)}`);
    if (d.code !== 0) throw new ReplayError(`replay: mariadb-binlog exited ${d.code}: ${d.stderr.trim().slice(-2000)}`);
    return { carriedXa: carry?.carry.carried ?? 0, skippedXa: carry?.carry.skipped ?? 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function clientArguments(t: ReplayTarget, dir: string): string[] {
  if ('socket' in t) return ['--no-defaults', `--socket=${t.socket}`, `--user=${t.user ?? 'root'}`, '--binary-mode'];
  const file = join(dir, 'client.cnf');
  writeFileSync(file, `[client]\npassword=${JSON.stringify(t.password)}\n`, { mode: 0o600 });
  // --defaults-extra-file must come first; the password never appears in /proc/<pid>/cmdline.
  return [`--defaults-extra-file=${file}`, `--host=${t.host}`, `--port=${t.port}`, `--user=${t.user}`, '--binary-mode'];
}

function exited(child: ReturnType<typeof spawn>, what: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 64_000) stderr += b.toString();
    });
    child.once('error', (err) => reject(new ReplayError(`replay: cannot run ${what}: ${err.message}`)));
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

/** A server to copy binlog files from, as a replica would (needs REPLICATION SLAVE). */
export interface BinlogSource {
  host: string;
  port: number;
  user: string;
  password: string;
}

/**
 * Copies `files` of `source` unchanged into `dir` (mariadb-binlog --read-from-remote-server --raw)
 * and returns their local paths, oldest first. The password goes in a private option file.
 */
export async function fetchBinlogs(
  source: BinlogSource,
  files: readonly string[],
  dir: string,
  binlogTool = 'mariadb-binlog',
): Promise<string[]> {
  if (files.length === 0) return [];
  const scratch = mkdtempSync(join(tmpdir(), 'sb-fetch-'));
  try {
    const cnf = join(scratch, 'client.cnf');
    writeFileSync(cnf, `[client]\npassword=${JSON.stringify(source.password)}\n`, { mode: 0o600 });
    const args = [
      `--defaults-file=${cnf}`,
      '--read-from-remote-server',
      '--raw',
      `--result-file=${dir.endsWith('/') ? dir : `${dir}/`}`,
      `--host=${source.host}`,
      `--port=${source.port}`,
      `--user=${source.user}`,
      ...files,
    ];
    const child = spawn(binlogTool, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const r = await exited(child, binlogTool);
    if (r.code !== 0)
      throw new ReplayError(
        `fetching binlogs from ${source.host}:${source.port}: mariadb-binlog exited ${r.code}: ${r.stderr.trim().slice(-2000)}`,
      );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return files.map((f) => join(dir, f));
}
