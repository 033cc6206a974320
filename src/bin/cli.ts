#!/usr/bin/env node
import { holdSignals } from '../signals.js';
import { packageVersion } from '../version.js';

// `spiderbackup … | head` closes the pipe early; that ends the output, it is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const args = process.argv.slice(2);
// The daemon's log-reopen and reload signals are held from the first moment (see signals.ts):
// loading the modules below takes long enough for logrotate's SIGHUP to kill it otherwise.
const held = args.includes('daemon') ? holdSignals(['SIGHUP', 'SIGUSR2']) : undefined;
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Asked often by fleet tooling: answered as commander would (version, exit 0), without loading it.
  process.stdout.write(`${packageVersion()}\n`);
} else {
  await main();
}

async function main(): Promise<void> {
  // Only commander and the command definitions; each command loads what it needs when it runs.
  const [{ CommanderError }, { buildProgram }, { ConfigError, errorMessage, isUserFacing, UsageError }] = await Promise.all([
    import('commander'),
    import('../cli/program.js'),
    import('../errors.js'),
  ]);
  const program = buildProgram((code) => {
    process.exitCode = code;
  }, held);

  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
    } else if (isUserFacing(err)) {
      process.stderr.write(`spiderbackup: ${err.message}\n`);
      // 2: fix the command or the config; 1: the operation failed (instance down, duplicate id …)
      process.exitCode = err instanceof ConfigError || err instanceof UsageError ? 2 : 1;
    } else {
      // A bug, not bad input: say so plainly; the stack is only shown on request.
      process.stderr.write(`spiderbackup: internal error: ${errorMessage(err)}\n`);
      if (process.env.SPIDERBACKUP_DEBUG) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
      process.exitCode = 70;
    }
  }
}
