// Runs this host's mysql-crond (`./mysql-crond list -c runtime.yaml`, from its own directory, as the
// platform runs it) to see whether the old tool's jobs are still registered. No shell: an argument
// vector and a timeout.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from '../errors.js';
import { judgeCrondJobs, parseCrondList, type CrondFinding } from './crond-list.js';

/** mysql-crond's runtime config, beside its binary (bk-dbm's layout and docs). */
export const CROND_RUNTIME_CONFIG = 'runtime.yaml';
const LIST_TIMEOUT_MS = 10_000;

export type CrondLook =
  /** No mysql-crond on this host: nothing to check. */
  { kind: 'absent' } | { kind: 'unreadable'; message: string } | { kind: 'read'; findings: CrondFinding[] };

export async function lookAtCrond(binary: string, now: () => Date = () => new Date()): Promise<CrondLook> {
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    return { kind: 'absent' };
  }
  let stdout: string;
  try {
    stdout = await run(binary, ['list', '-c', CROND_RUNTIME_CONFIG], dirname(binary));
  } catch (err) {
    return { kind: 'unreadable', message: `${binary} list -c ${CROND_RUNTIME_CONFIG}: ${errorMessage(err)}` };
  }
  const jobs = parseCrondList(stdout);
  if (jobs === undefined)
    return { kind: 'unreadable', message: `${binary} list -c ${CROND_RUNTIME_CONFIG}: output is not the job table this agent knows` };
  return { kind: 'read', findings: judgeCrondJobs(jobs, now()) };
}

function run(file: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, timeout: LIST_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.trim().split('\n').slice(-1)[0];
          reject(
            new Error(
              err.killed ? `no answer within ${LIST_TIMEOUT_MS / 1000}s` : `${err.message.split('\n')[0]}${detail ? `: ${detail}` : ''}`,
            ),
          );
        } else resolve(stdout);
      },
    );
  });
}
