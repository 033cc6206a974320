// The exact status strings of SPEC §2; other tools read them, so they never change.
export const STATUS = {
  init: 'init',
  replicated: 'replicated',
  running: 'running',
  success: 'success',
  failed: 'failed',
  quit: 'quit',
  cancel: 'cancel',
  unknown: 'unknown',
} as const;

export const REASON = {
  noPid: 'failed: no pid',
  processGone: 'failed: process does not exist',
  // 32 characters: stored cut to the column's 30, as the old tool's was (see STATUS_WIDTH in task/task.ts).
  foreignPid: 'failed: cmdline has no backup-id',
  timeout: 'failed: timeout',
  /** The supervisor died while its backup ran: the backup was killed, its exit code is unknowable. */
  supervisorDied: 'failed: supervisor died',
  /** A row whose backup id `schedule` would refuse ('..', a separator …): never run, it would name a path. */
  invalidBackupId: 'failed: invalid backup id',
  quitNoProcess: 'quit: no process',
  quitSuccess: 'quit: success',
  quitFail: 'quit: fail',
} as const;

export const isRunnable = (status: string): boolean => status === STATUS.init || status === STATUS.replicated;

/** The part before ':' — `failed: timeout` is a `failed`. */
export const statusClass = (status: string): string => status.split(':')[0]?.trim() ?? status;

export const isFinished = (status: string): boolean => {
  const c = statusClass(status);
  return c === STATUS.success || c === STATUS.failed || c === STATUS.quit || c === STATUS.cancel || c === STATUS.unknown;
};

/** Final status of a backup process from how it ended. */
export function exitStatus(code: number | null, signal: string | null, spawnError?: string): string {
  if (spawnError !== undefined) return `failed: cannot start ${spawnError}`;
  if (code === 0) return STATUS.success;
  if (signal) return `failed: killed by ${signal}`;
  return `failed: exit code ${code}`;
}
