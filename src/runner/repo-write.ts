// One instance's backup written into the repository (README "Repository"), by a built-in runner or
// by the supervisor after `runner = command`: the place is checked and cleared of what earlier
// attempts left, the data objects are streamed in, the manifest is written last (present =
// complete), and the agent's own check compares the stored copy with it.
import type { Readable } from 'node:stream';
import { locationOf } from '../repo/agent-repository.js';
import { instanceKey, MANIFEST_OBJECT, upload, type Repository, type UploadOptions } from '../repo/repository.js';
import { RepoError } from '../repo/store.js';
import { isValidBackupId } from '../task/backup-id.js';
import { isFinished, statusClass, STATUS } from '../task/status.js';
import type { TaskKey, TaskRow } from '../task/task.js';
import { manifestText, sha256Text, type DirCheck, type Manifest, type ManifestFile } from './manifest.js';

/** Where one instance's backup goes: `<prefix>/backups/<id>/<host>_<port>/`. */
export interface RepoTarget {
  repo: Repository;
  /** The instance's key prefix, ending in '/'. */
  key: string;
  /** `<store>:<key>`, for messages and the verdict row. */
  where: string;
}

export function repoTarget(repo: Repository, k: Pick<TaskKey, 'backupId' | 'host' | 'port'>): RepoTarget {
  const key = instanceKey(repo, k.backupId, k.host, k.port);
  return { repo, key, where: locationOf(repo, key) };
}

/**
 * Earlier attempts of this instance whose leftovers may still be in the repository: its finished,
 * unsuccessful tasks since its last successful one (that backup's own run cleaned what came
 * before). `tasks` are the instance's rows, oldest first.
 */
export function earlierAttempts(tasks: readonly TaskRow[], current: TaskKey): string[] {
  const mine = tasks.filter((t) => t.host === current.host && t.port === current.port);
  let from = 0;
  mine.forEach((t, i) => {
    if (t.status === STATUS.success) from = i + 1;
  });
  const ids = mine
    .slice(from)
    // `quit` alone is a quit still being carried out: its backup may be running.
    .filter((t) => t.status !== STATUS.quit && isFinished(t.status) && statusClass(t.status) !== STATUS.success)
    .map((t) => t.backupId)
    .filter((id) => id !== current.backupId && isValidBackupId(id));
  return [...new Set(ids)];
}

/**
 * Before the tool runs: the store is usable, the place holds no complete backup (never
 * overwritten), and what earlier attempts left is removed — incomplete uploads, and data objects
 * whose manifest was never written. One backup per host runs at a time, so nothing of this
 * instance is being written meanwhile. Returns the removed keys, for the log.
 */
export async function prepareTarget(t: RepoTarget, earlier: readonly string[], k: Pick<TaskKey, 'host' | 'port'>): Promise<string[]> {
  const { store } = t.repo;
  await store.check();
  if ((await store.getObject(`${t.key}${MANIFEST_OBJECT}`)) !== undefined)
    throw new RepoError(`${t.where} already holds a complete backup; not overwritten`, 'Exists');
  const removed: string[] = [];
  for (const prefix of [t.key, ...earlier.map((id) => instanceKey(t.repo, id, k.host, k.port))]) {
    removed.push(...(await store.cleanIncomplete(prefix)));
    // A complete backup of a failed task (its check failed, its verdict not published …) is expire's to judge.
    if (prefix !== t.key && (await store.stat(`${prefix}${MANIFEST_OBJECT}`)) !== undefined) continue;
    const orphans = (await store.list(prefix)).map((o) => o.key);
    if (orphans.length > 0) await store.remove(orphans);
    removed.push(...orphans);
  }
  return removed;
}

/**
 * After a failed or cancelled attempt: what it stored goes at once (best effort; the next backup
 * of the instance removes what is left). Never called once the manifest is written.
 */
export async function discardTarget(t: RepoTarget): Promise<void> {
  await t.repo.store.cleanIncomplete(t.key).catch(() => undefined);
  const left = await t.repo.store.list(t.key).catch(() => []);
  if (left.length > 0) await t.repo.store.remove(left.map((o) => o.key)).catch(() => undefined);
}

/** Streams one data object in; its manifest entry (bytes and sha256 of the stored bytes). */
export async function uploadObject(
  t: RepoTarget,
  name: string,
  body: Readable,
  opts: UploadOptions = {},
): Promise<ManifestFile & { keyId: string | undefined }> {
  const up = await upload(t.repo, `${t.key}${name}`, body, opts);
  return { name, bytes: up.bytes, sha256: up.sha256, keyId: up.keyId };
}

/** The manifest, last, in one atomic write: from now on the backup is complete. Returns its text. */
export async function putManifest(t: RepoTarget, m: Manifest): Promise<string> {
  const text = manifestText(m);
  await t.repo.store.putObject(`${t.key}${MANIFEST_OBJECT}`, Buffer.from(text));
  return text;
}

/**
 * The agent's own check right after the backup: the manifest reads back as written, and every
 * object it lists is in the store with its size. The sha256 was taken from the very bytes sent,
 * so the data is not read back (`verify` does that, from any host).
 */
export async function checkRepoCopy(t: RepoTarget, written: string): Promise<DirCheck> {
  const fail = (problem: string): DirCheck => ({ ok: false, problems: [problem], manifestSha256: undefined, manifest: undefined });
  const at = `${t.where}${MANIFEST_OBJECT}`;
  let text: string;
  try {
    const buf = await t.repo.store.getObject(`${t.key}${MANIFEST_OBJECT}`);
    if (buf === undefined) return fail(`${at}: manifest missing (incomplete backup)`);
    text = buf.toString('utf8');
  } catch (err) {
    return fail(`${at}: ${(err as Error).message}`);
  }
  const digest = sha256Text(text);
  if (text !== written)
    return { ok: false, problems: [`${at}: differs from the manifest written`], manifestSha256: digest, manifest: undefined };
  const manifest = JSON.parse(text) as Manifest;
  const problems: string[] = [];
  for (const f of manifest.files) {
    try {
      const o = await t.repo.store.stat(`${t.key}${f.name}`);
      if (o === undefined) problems.push(`${t.where}${f.name}: missing`);
      else if (o.bytes !== f.bytes) problems.push(`${t.where}${f.name}: ${o.bytes} bytes in the store, manifest says ${f.bytes}`);
    } catch (err) {
      problems.push(`${t.where}${f.name}: ${(err as Error).message}`);
    }
  }
  return { ok: problems.length === 0, problems, manifestSha256: digest, manifest };
}
