#!/usr/bin/env node
// Entry point of a built-in backup runner ([backup] runner = mariadb-backup | mariadb-dump): the
// backup command the supervisor starts, in its own process group. See src/runner/run-backup.ts.
import { parseRunnerArgs, RunnerUsageError } from '../runner/args.js';
import { runBackup } from '../runner/run-backup.js';
import { errorMessage } from '../errors.js';

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

runBackup(spec, { say, signal: abort.signal })
  .then((code) => process.exit(abort.signal.aborted ? 143 : code))
  .catch((err: unknown) => {
    say(`backup failed: ${errorMessage(err)}`);
    process.exit(abort.signal.aborted ? 143 : 1);
  });
