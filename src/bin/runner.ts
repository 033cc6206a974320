#!/usr/bin/env node
// Entry point of a built-in backup runner ([backup] runner = mariadb-backup | mariadb-dump): the
// backup command the supervisor starts, in its own process group. See src/runner/run-backup.ts.
import { writeSync } from 'node:fs';
import { parseRunnerArgs, RUNNER_EXIT, RunnerUsageError } from '../runner/args.js';
import { runBackup } from '../runner/run-backup.js';
import { errorMessage } from '../errors.js';
import { progressLine, PROGRESS_EVERY_MS } from '../host/progress.js';
import { RepoError } from '../repo/store.js';

// stderr goes to the supervisor, which a quit kills along with us: a write after it is gone fails
// with EPIPE, which must not end this process before it has removed its partial output.
process.stderr.on('error', () => {});
const say = (line: string) => {
  try {
    process.stderr.write(`spiderbackup runner: ${line}\n`);
  } catch {
    // the supervisor is gone; the outcome is in the directory and the row
  }
};

let spec;
try {
  spec = parseRunnerArgs(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof RunnerUsageError)) throw err;
  say(err.message);
  process.exit(2);
}

const abort = new AbortController();
// A quit (or the agent's leftover kill) sends SIGTERM to the whole group: stop the tool, remove
// the partial output, exit non-zero. SIGHUP/SIGUSR2 are meant for log reopening, not for us.
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    say(`${sig}: cancelling; partial output removed`);
    abort.abort();
  });
}
for (const sig of ['SIGHUP', 'SIGUSR2'] as const) process.on(sig, () => {});

// With a repository the supervisor cannot see the bytes in BackupDir: they are told on stdout,
// which it reads (host/progress.ts), at most every PROGRESS_EVERY_MS and once at the end.
let stored: number | undefined;
let told: number | undefined;
const tell = () => {
  if (stored === undefined || stored === told) return;
  told = stored;
  try {
    writeSync(1, progressLine(stored));
  } catch {
    // the supervisor is gone, or behind: progress never stops a backup
  }
};
const telling = spec.repository ? setInterval(tell, PROGRESS_EVERY_MS / 2) : undefined;
telling?.unref();
const progress = spec.repository ? (n: number) => void (stored = n) : undefined;

const exit = (code: number) => {
  if (telling) {
    clearInterval(telling);
    tell();
  }
  process.exit(abort.signal.aborted ? 143 : code);
};
runBackup(spec, { say, signal: abort.signal, ...(progress ? { progress } : {}) })
  .then(exit)
  .catch((err: unknown) => {
    say(`backup failed: ${errorMessage(err)}`);
    exit(err instanceof RepoError ? RUNNER_EXIT.repository : 1);
  });
