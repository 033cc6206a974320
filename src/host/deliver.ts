// Delivers journaled status updates of one instance, oldest first. Stops at the first failure so
// the order is kept; the entry stays for the next attempt.
import type { Logger } from 'pino';
import type { Connection } from '../db/connect.js';
import type { InstanceConfig } from '../config/instance.js';
import * as sql from '../sql/tasks.js';
import { readJournal, removeJournal } from './journal.js';

export async function deliverJournal(conn: Connection, instance: InstanceConfig, stateDir: string, logger: Logger): Promise<number> {
  const { entries, bad } = readJournal(stateDir);
  for (const name of bad) logger.error({ file: name }, 'unreadable journal entry moved aside as .bad');
  let delivered = 0;
  for (const e of entries) {
    if (e.key.host !== instance.host || e.key.port !== instance.port) continue;
    const applied = await sql.updateRunning(conn, e.key, e.observedPid, e.status);
    const log = logger.child({ backupId: e.key.backupId, port: e.key.port, shardValue: e.key.shardValue });
    if (applied) log.info({ status: e.status, writtenAt: e.writtenAt }, 'journaled final status delivered');
    else
      log.warn(
        { status: e.status, writtenAt: e.writtenAt },
        'journaled status not applied: the task changed meanwhile (already delivered, quit or timeout)',
      );
    removeJournal(stateDir, e.id);
    delivered++;
  }
  return delivered;
}
