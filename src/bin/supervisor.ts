#!/usr/bin/env node
// Entry point of the detached per-backup supervisor (see host/supervise.ts and host/protocol.ts).
// Started by the agent through flock(1) with an argument vector; its command line carries the
// task, never a password.
import { createLogger, reopenOnSignals } from '../log.js';
import { supervise } from '../host/supervise.js';
import { parseSupervisorArgs, SUPERVISOR_EXIT, SupervisorUsageError, type SupervisorSpec } from '../host/protocol.js';
import { errorMessage } from '../errors.js';

let spec: SupervisorSpec;
try {
  spec = parseSupervisorArgs(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof SupervisorUsageError)) throw err;
  process.stderr.write(`spiderbackup supervisor: ${err.message}\n`);
  process.exit(SUPERVISOR_EXIT.notStarted);
}

const { key } = spec;
// Follows logrotate by itself; SIGHUP/SIGUSR2 (the agent going away, a postrotate script
// signalling every spiderbackup process) reopen the log file and never end the supervisor.
const { logger, flush } = reopenOnSignals(createLogger({ level: spec.logLevel, file: spec.logFile, name: 'supervisor' }));
const log = logger.child({ backupId: key.backupId, port: key.port, shardValue: key.shardValue });

supervise({ spec, logger: log })
  .then((code) => {
    flush();
    process.exit(code);
  })
  .catch((err: unknown) => {
    log.error({ err: errorMessage(err) }, 'supervisor failed');
    flush();
    process.exit(SUPERVISOR_EXIT.notStarted);
  });
