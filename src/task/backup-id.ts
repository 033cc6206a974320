import { UsageError } from '../errors.js';

const BACKUP_ID = /^[A-Za-z0-9._-]{1,40}$/;

/** A backup id goes into the table (varchar 40), command lines and log lines: keep it plain. */
export function validateBackupId(id: string, flag = '--backup-id'): string {
  if (!BACKUP_ID.test(id)) {
    throw new UsageError(`${flag} ${JSON.stringify(id)}: must be 1-40 characters of letters, digits, '-', '_' or '.'`);
  }
  return id;
}
