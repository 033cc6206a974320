#!/usr/bin/env node
import { CommanderError } from 'commander';
import { buildProgram } from '../cli/program.js';
import { ConfigError, errorMessage, isUserFacing, UsageError } from '../errors.js';

const program = buildProgram((code) => {
  process.exitCode = code;
});

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
