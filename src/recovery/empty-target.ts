// The target must be empty before a restore: no schema but the system ones and the agent's own.
// A target file that says `"scratch": true` allows wiping it instead (a replica stops replicating
// first, so nothing arrives from an old master meanwhile). Nothing of the wipe is binlogged.
import type { Queryable } from '../db/connect.js';
import { OperationError } from '../errors.js';
import { setSqlLogBin } from '../sql/tasks.js';
import { dropSchema, hasReplication, resetSlaveAll, stopSlave, SYSTEM_SCHEMAS, userSchemas } from '../sql/recovery.js';

export class NotEmptyError extends OperationError {
  override readonly name = 'NotEmptyError';
}

/** Refuses a target holding user schemas (naming them), or wipes them when `scratch`. */
export async function ensureEmpty(db: Queryable, who: string, scratch: boolean, log: (msg: string) => void): Promise<void> {
  const schemas = await userSchemas(db);
  const replicating = await hasReplication(db);
  if (!scratch) {
    if (schemas.length > 0)
      throw new NotEmptyError(
        `${who} is not empty: it holds ${schemas.join(', ')} (only ${SYSTEM_SCHEMAS.join(', ')} may be there; a target file with "scratch": true allows wiping it)`,
      );
    if (replicating)
      throw new NotEmptyError(`${who} replicates from a master already (SHOW SLAVE STATUS has a row); it is not a bare target`);
    return;
  }
  await setSqlLogBin(db, false);
  if (replicating) {
    log('scratch target: replication stopped and reset');
    await stopSlave(db);
    await resetSlaveAll(db);
  }
  for (const s of schemas) await dropSchema(db, s);
  if (schemas.length > 0) log(`scratch target: dropped ${schemas.join(', ')}`);
  await setSqlLogBin(db, true);
}
