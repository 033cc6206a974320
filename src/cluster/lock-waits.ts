// The lock waits of a spider-side command's sessions: bounded by the server a little before the
// statement bound ([schedule] statement_timeout), so a statement waiting on another session's lock
// ends with the server's own answer, and that answer names the node and who held the lock.
import type { Queryable } from '../db/connect.js';
import { limitLockWaits, metadataLockHolders, type MetadataLockHolder } from '../sql/lock-waits.js';

/**
 * lock_wait_timeout (and innodb_lock_wait_timeout) for a statement bound: a second under it, in
 * the server's whole seconds, at least 1; the client's own timeout stays the last resort.
 */
export const lockWaitSecondsFor = (statementTimeoutMs: number): number => Math.max(1, Math.ceil(statementTimeoutMs / 1000) - 1);

/** The session setting, run once per connection as it opens. */
export const limitCommandLockWaits =
  (seconds: number) =>
  (q: Queryable): Promise<void> =>
    limitLockWaits(q, seconds);

/**
 * What a statement that gave up after `seconds` waited for: the sessions holding a blocking
 * metadata lock there (LOCK TABLES, a DDL, FLUSH TABLES WITH READ LOCK), else why none is named.
 */
export const whatHeldTheLock =
  (seconds: number) =>
  async (q: Queryable): Promise<string> => {
    const waited = `waited lock_wait_timeout (${seconds} s)`;
    let holders: MetadataLockHolder[];
    try {
      holders = await metadataLockHolders(q);
    } catch {
      holders = [];
    }
    if (holders.length === 0)
      return (
        `${waited} for a lock held by another session, not named here (a row lock, or the metadata_lock_info plugin or ` +
        'the PROCESS privilege is missing there: SHOW PROCESSLIST on it tells)'
      );
    return `${waited} for a lock held by ${holders.map(describe).join(', ')}`;
  };

function describe(h: MetadataLockHolder): string {
  const what = h.object ? `${h.mode} on ${h.object}` : h.mode;
  return `connection ${h.id} (${h.user}@${h.host}, ${h.command} for ${h.timeS} s: ${what})`;
}
