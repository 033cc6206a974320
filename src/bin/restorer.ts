#!/usr/bin/env node
// Entry point of the detached restore worker (recovery/worker.ts), started by the daemon with an
// argument vector (recovery/worker-args.ts) in its own process group; its command line carries the
// task, never a password.
import { createLogger, reopenOnSignals } from '../log.js';
import { loadAgentConfig } from '../config/agent.js';
import { errorMessage } from '../errors.js';
import { parseWorkerArgs, WorkerUsageError, type WorkerArgs } from '../recovery/worker-args.js';
import { runRestoreWorker, WORKER_EXIT } from '../recovery/worker.js';

let args: WorkerArgs;
try {
  args = parseWorkerArgs(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof WorkerUsageError)) throw err;
  process.stderr.write(`spiderbackup restorer: ${err.message}\n`);
  process.exit(WORKER_EXIT.notStarted);
}

let level = 'info';
let file: string | undefined;
try {
  const config = loadAgentConfig(args.agentConfig);
  level = config.log.level;
  file = config.log.file;
} catch (err) {
  process.stderr.write(`spiderbackup restorer: ${errorMessage(err)}\n`);
  process.exit(WORKER_EXIT.notStarted);
}
const { logger, flush } = reopenOnSignals(createLogger({ level, file, name: 'restorer' }));
const log = logger.child({ restoreId: args.restoreId, target: `${args.target.host}:${args.target.port}`, attempt: args.attempt });

runRestoreWorker({ args, logger: log })
  .then((code) => {
    flush();
    process.exit(code);
  })
  .catch((err: unknown) => {
    log.error({ err: errorMessage(err) }, 'restore worker failed');
    flush();
    process.exit(WORKER_EXIT.notStarted);
  });
