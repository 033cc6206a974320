#!/usr/bin/env node
// Entry point of the detached per-backup supervisor (see core/supervise.ts). Started by the agent
// with an argument vector; its command line carries the backup id and port, never a password.
import { parseArgs } from 'node:util';
import { createLogger } from '../log.js';
import { supervise, SUPERVISOR_EXIT, SUPERVISOR_MARK } from '../core/supervise.js';
import { errorMessage } from '../errors.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'backup-id': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'shard-value': { type: 'string' },
    instance: { type: 'string' },
    'state-dir': { type: 'string' },
    cwd: { type: 'string' },
    'log-level': { type: 'string' },
    'log-file': { type: 'string' },
  },
});

const [mark, ...argv] = positionals;
const need = (name: keyof typeof values): string => {
  const v = values[name];
  if (typeof v !== 'string' || v === '') {
    process.stderr.write(`supervisor: --${name} is required\n`);
    process.exit(SUPERVISOR_EXIT.notStarted);
  }
  return v;
};

if (mark !== SUPERVISOR_MARK || argv.length === 0) {
  process.stderr.write(`supervisor: usage: supervisor.js ${SUPERVISOR_MARK} --backup-id … -- <backup argv>\n`);
  process.exit(SUPERVISOR_EXIT.notStarted);
}

// The agent may go away (restart, upgrade, kill -9); a hang-up must not take the backup with it.
process.on('SIGHUP', () => {});

const key = { backupId: need('backup-id'), host: need('host'), port: Number(need('port')), shardValue: Number(need('shard-value')) };
const { logger, flush } = createLogger({ level: values['log-level'] ?? 'info', file: values['log-file'], name: 'supervisor' });
const log = logger.child({ backupId: key.backupId, port: key.port, shardValue: key.shardValue });

supervise({ key, instanceFile: need('instance'), stateDir: need('state-dir'), argv, cwd: values.cwd, logger: log })
  .then((code) => {
    flush();
    process.exit(code);
  })
  .catch((err: unknown) => {
    log.error({ err: errorMessage(err) }, 'supervisor failed');
    flush();
    process.exit(SUPERVISOR_EXIT.notStarted);
  });
