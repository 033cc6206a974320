// What a backup id may be: it is a directory name for every runner (the old tool's included), so
// the same rule holds wherever an id is read — `schedule`, the agent's pick and the runner.
import { UsageError } from '../errors.js';

const BACKUP_ID = /^[A-Za-z0-9._-]{1,40}$/;

/** A backup id goes into the table (varchar 40), command lines, paths and log lines: keep it plain. */
export function isValidBackupId(id: string): boolean {
  // Only dots ('.', '..') would name the backup directory itself or its parent.
  return BACKUP_ID.test(id) && !/^\.+$/.test(id);
}

export function validateBackupId(id: string, flag = '--backup-id'): string {
  if (!isValidBackupId(id)) {
    throw new UsageError(`${flag} ${JSON.stringify(id)}: must be 1-40 characters of letters, digits, '-', '_' or '.' (not only dots)`);
  }
  return id;
}
