// The agent's verdict on its own backup, right after it: the check's outcome published on the
// instance (infodba_schema.spiderbackup_manifest), where `verify` later compares it. The built-in
// runners and the supervisor's upload after `runner = command` publish it the same way.
import type { InstanceConfig } from '../config/instance.js';
import { withConnection } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { publishVerdict, type ManifestVerdict } from '../sql/manifests.js';
import { withUnloggedConnection } from '../sql/unlogged.js';
import type { TaskKey } from '../task/task.js';
import type { DirCheck } from './manifest.js';

export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Publishes `check` as the verdict of this instance's backup. A refusal or failure is only said
 * (`say`): the backup is as complete as it is, and `verify` reports a missing verdict. Returns the
 * problems joined, '' when the check passed.
 */
export async function publishCheck(
  instance: InstanceConfig,
  replica: boolean,
  key: Pick<TaskKey, 'backupId' | 'host' | 'port' | 'shardValue'>,
  check: DirCheck,
  backup: { role: string; tool: string; dir: string },
  say: (line: string) => void,
): Promise<string> {
  const verdict = check.ok ? 'ok' : 'bad';
  const detail = check.problems.join('; ');
  try {
    const refused = await publish(instance, replica, {
      backupId: key.backupId,
      host: key.host,
      port: key.port,
      shardValue: key.shardValue,
      ...backup,
      bytes: check.manifest?.bytes ?? 0,
      manifestSha256: check.manifestSha256 ?? '',
      verdict,
      verdictDetail: detail,
      manifest: check.manifest ? JSON.stringify(check.manifest) : '',
    });
    if (refused !== undefined) say(`verdict (${verdict}) not published on this replica: ${refused}`);
  } catch (err) {
    say(`cannot publish the verdict (${verdict}): ${errorMessage(err)}`);
  }
  return detail;
}

/**
 * The verdict row on the instance; on a replica on a session of its own with sql_log_bin = 0 (the
 * row is the agent's own, not a task status), or not at all where the user may not: the reason.
 */
async function publish(instance: InstanceConfig, replica: boolean, v: ManifestVerdict): Promise<string | undefined> {
  if (!replica) {
    await withConnection(instance, (c) => publishVerdict(c, v), { connectTimeoutMs: CONNECT_TIMEOUT_MS });
    return undefined;
  }
  const r = await withUnloggedConnection(instance, (c) => publishVerdict(c, v), { connectTimeoutMs: CONNECT_TIMEOUT_MS });
  return 'refused' in r ? r.refused : undefined;
}
