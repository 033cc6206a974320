// The tools a restore task runs (zstd, mbstream, mariadb, mariadb-backup, the [restore] stop/start
// commands): argument vectors, never a shell; an abort kills them; a failure names the command
// (its first word, never its arguments: a defaults file path is fine, a password never is there)
// and the last lines of its stderr.
import { Transform } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import { spawnArgv } from '../host/processes.js';
import { OperationError } from '../errors.js';

export class ToolError extends OperationError {
  override readonly name = 'ToolError';
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  error?: Error;
}

function ended(child: ChildProcess): Promise<Ended> {
  return new Promise((resolve) => {
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.once('error', (error) => resolve({ code: null, signal: null, stderr, error }));
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

function problem(argv: readonly string[], e: Ended): string | undefined {
  if (e.error) return `${argv[0]}: ${e.error.message}`;
  if (e.code === 0) return undefined;
  const tail = e.stderr.trim().split('\n').slice(-3).join(' | ');
  return `${argv[0]} exited with ${e.code ?? e.signal}${tail ? `: ${tail}` : ''}`;
}

/**
 * `first` | `second`, with the bytes flowing between them counted (onBytes gets the running
 * total). Rejects with both tools' problems when either fails.
 */
export async function runPipe(
  first: readonly string[],
  second: readonly string[],
  opts: { signal?: AbortSignal; onBytes?: (total: number) => void } = {},
): Promise<number> {
  const a = spawnArgv(first, { stdio: ['ignore', 'pipe', 'pipe'] });
  const b = spawnArgv(second, { stdio: ['pipe', 'ignore', 'pipe'] });
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      opts.onBytes?.(total);
      cb(null, chunk);
    },
  });
  b.stdin?.on('error', () => undefined);
  counter.on('error', () => undefined);
  a.stdout?.pipe(counter).pipe(b.stdin as NodeJS.WritableStream);
  // A consumer that stops early leaves the producer blocked on a full pipe: it goes too.
  b.once('close', () => {
    if (a.exitCode === null && a.signalCode === null) a.kill('SIGTERM');
  });
  const abort = () => {
    a.kill('SIGKILL');
    b.kill('SIGKILL');
  };
  opts.signal?.addEventListener('abort', abort, { once: true });
  try {
    const [ea, eb] = await Promise.all([ended(a), ended(b)]);
    if (opts.signal?.aborted) throw new ToolError(`${first[0]} | ${second[0]}: stopped`);
    // The consumer's error first: the producer's EPIPE only follows it.
    const problems = [problem(second, eb), problem(first, ea)].filter((p): p is string => p !== undefined);
    if (problems.length > 0) throw new ToolError(problems[0] as string);
    return total;
  } finally {
    opts.signal?.removeEventListener('abort', abort);
  }
}

/** One command to its end; rejects naming it when it fails. */
export async function runCommand(argv: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<void> {
  const child = spawnArgv(argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  const abort = () => child.kill('SIGKILL');
  opts.signal?.addEventListener('abort', abort, { once: true });
  try {
    const e = await ended(child);
    if (opts.signal?.aborted) throw new ToolError(`${argv[0]}: stopped`);
    const p = problem(argv, e);
    if (p !== undefined) throw new ToolError(p);
  } finally {
    opts.signal?.removeEventListener('abort', abort);
  }
}
