// One instance's backup in the repository (README "Repository"), as the readers see it: its
// manifest, the check of its objects against it (size and sha256 of the stored bytes, streamed;
// no key needed), and the fetch of its files, decrypted and checked, into a local directory for a
// restore. Also the inventory of the backups the repository holds, for `list` and `expire`.
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { errorMessage } from '../errors.js';
import { sha256Text, type Manifest } from '../runner/manifest.js';
import { resolveUnder } from '../runner/paths.js';
import { backupKey, backupsKey, downloadChecked, hashStored, instanceKey, MANIFEST_OBJECT, type Repository } from '../repo/repository.js';
import { checkKey, RepoError, type StoredObject } from '../repo/store.js';
import { isValidBackupId } from '../task/backup-id.js';

export interface RepoManifest {
  text: string;
  sha256: string;
  manifest: Manifest;
}

/** The manifest object of one instance's backup; undefined when it is not there (not complete). */
export async function readRepoManifest(repo: Repository, backupId: string, host: string, port: number): Promise<RepoManifest | undefined> {
  const key = `${instanceKey(repo, backupId, host, port)}${MANIFEST_OBJECT}`;
  const data = await repo.store.getObject(key);
  if (!data) return undefined;
  const text = data.toString('utf8');
  const manifest = JSON.parse(text) as Manifest;
  if (!Array.isArray(manifest.files)) throw new RepoError(`${repo.store.where}: ${key}: not a manifest (no files list)`);
  return { text, sha256: sha256Text(text), manifest };
}

/** The key of a manifest entry, or why the entry cannot be one (a tampered manifest names anything). */
function entryKey(repo: Repository, backupId: string, host: string, port: number, name: unknown): string | { problem: string } {
  const base = instanceKey(repo, backupId, host, port);
  if (typeof name !== 'string' || name === MANIFEST_OBJECT)
    return { problem: `entry ${JSON.stringify(name)} is not a data object; not read` };
  try {
    checkKey(`${base}${name}`);
    return `${base}${name}`;
  } catch {
    return { problem: `entry ${JSON.stringify(name)} names an object outside ${base}; not read` };
  }
}

export interface RepoInstanceCheck {
  ok: boolean;
  /** One line per problem, naming the object. */
  problems: string[];
  /** Not failures: e.g. the key id unknown to this host (integrity was still checked). */
  warnings: string[];
  manifest: RepoManifest | undefined;
  /** Objects re-checked. */
  checked: number;
}

/**
 * Checks one instance's objects against its manifest in the repository (and, when given, against
 * the manifest digest its agent published): every object there with its size and the sha256 of
 * its stored bytes. Encrypted objects are checked as stored: the key is not needed, only its id is
 * compared with this host's keys.
 */
export async function checkRepoInstance(
  repo: Repository,
  backupId: string,
  host: string,
  port: number,
  expectedManifestSha256?: string,
): Promise<RepoInstanceCheck> {
  const res: RepoInstanceCheck = { ok: false, problems: [], warnings: [], manifest: undefined, checked: 0 };
  const base = instanceKey(repo, backupId, host, port);
  try {
    res.manifest = await readRepoManifest(repo, backupId, host, port);
  } catch (err) {
    res.problems.push(`${base}${MANIFEST_OBJECT}: ${errorMessage(err)}`);
    return res;
  }
  const m = res.manifest;
  if (!m) {
    res.problems.push(`${repo.where}: ${base}${MANIFEST_OBJECT} missing (incomplete backup, or not in this repository)`);
    return res;
  }
  if (expectedManifestSha256 !== undefined && expectedManifestSha256 !== '' && expectedManifestSha256 !== m.sha256)
    res.problems.push(
      `${base}${MANIFEST_OBJECT}: sha256 ${m.sha256.slice(0, 12)}… differs from the published ${expectedManifestSha256.slice(0, 12)}…`,
    );
  const keyId = m.manifest.encryption?.keyId;
  if (keyId !== undefined && !repo.keys.some((k) => k.id === keyId))
    res.warnings.push(
      `encrypted with key id ${keyId}, unknown to this host (${repo.keys.length === 0 ? 'no encryption_key_file set' : `its keys: ${repo.keys.map((k) => k.id).join(', ')}`}): integrity checked, not decryptable here`,
    );
  for (const f of m.manifest.files) {
    const key = entryKey(repo, backupId, host, port, f.name);
    if (typeof key !== 'string') {
      res.problems.push(`${base}${MANIFEST_OBJECT}: ${key.problem}`);
      continue;
    }
    try {
      const st = await repo.store.stat(key);
      if (!st) {
        res.problems.push(`${key}: missing`);
        continue;
      }
      if (st.bytes !== f.bytes) {
        res.problems.push(`${key}: ${st.bytes} bytes stored, manifest says ${f.bytes}`);
        continue;
      }
      const h = await hashStored(repo, key);
      res.checked++;
      if (h.bytes !== f.bytes) res.problems.push(`${key}: ${h.bytes} bytes read, manifest says ${f.bytes}`);
      else if (h.sha256 !== f.sha256)
        res.problems.push(`${key}: sha256 mismatch (${h.sha256.slice(0, 12)}…, manifest says ${f.sha256.slice(0, 12)}…)`);
    } catch (err) {
      res.problems.push(`${key}: ${errorMessage(err)}`);
    }
  }
  res.ok = res.problems.length === 0;
  return res;
}

/**
 * Downloads every file of the manifest into `dir` (created), decrypted, each checked against the
 * manifest while it streams; on any failure what was written is removed and the error names the
 * object. `dir` then holds the files as a built-in runner leaves them in BackupDir.
 */
export async function fetchInstance(
  repo: Repository,
  backupId: string,
  host: string,
  port: number,
  manifest: Manifest,
  dir: string,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  try {
    for (const f of manifest.files) {
      const key = entryKey(repo, backupId, host, port, f.name);
      if (typeof key !== 'string') throw new RepoError(`${instanceKey(repo, backupId, host, port)}${MANIFEST_OBJECT}: ${key.problem}`);
      const path = resolveUnder(dir, f.name);
      mkdirSync(dirname(path), { recursive: true });
      written.push(path);
      try {
        await pipeline(await downloadChecked(repo, key, f, isEncrypted(manifest)), createWriteStream(path, { mode: 0o640 }));
      } catch (err) {
        const text = errorMessage(err);
        throw text.includes(key) ? err : new RepoError(`${repo.store.where}: ${key}: ${text}`, undefined, { cause: err });
      }
    }
  } catch (err) {
    for (const p of written) rmSync(p, { force: true });
    throw err;
  }
}

/** One data object to a stream (`repo get … -`): decrypted and checked while it streams. */
export async function streamObject(repo: Repository, backupId: string, host: string, port: number, manifest: Manifest, out: Writable) {
  const f = manifest.files[0];
  if (!f || manifest.files.length !== 1)
    throw new RepoError(`${instanceKey(repo, backupId, host, port)} holds ${manifest.files.length} data files: use --out DIR`);
  const key = entryKey(repo, backupId, host, port, f.name);
  if (typeof key !== 'string') throw new RepoError(key.problem);
  await pipeline(await downloadChecked(repo, key, f, isEncrypted(manifest)), out, { end: false });
}

export interface RepoInstance {
  /** `<host>_<port>` */
  name: string;
  host: string;
  port: number;
  manifest: Manifest | undefined;
  bytes: number;
}

export interface RepoBackup {
  backupId: string;
  instances: RepoInstance[];
  /** Every object under the backup's key (data, manifests, leftovers). */
  objects: StoredObject[];
  bytes: number;
  /** The earliest manifest startedAt, else the oldest object's time. */
  startedAt: Date;
}

/** Every backup the repository holds, by id (oldest first), with its instances and manifests. */
export async function repoBackups(repo: Repository): Promise<RepoBackup[]> {
  const base = backupsKey(repo);
  const byId = new Map<string, StoredObject[]>();
  for (const o of await repo.store.list(base)) {
    const id = o.key.slice(base.length).split('/')[0] ?? '';
    if (!isValidBackupId(id)) continue;
    byId.set(id, [...(byId.get(id) ?? []), o]);
  }
  const out: RepoBackup[] = [];
  for (const [backupId, objects] of byId) {
    const prefix = backupKey(repo, backupId);
    const names = new Map<string, StoredObject[]>();
    for (const o of objects) {
      const name = o.key.slice(prefix.length).split('/')[0] ?? '';
      names.set(name, [...(names.get(name) ?? []), o]);
    }
    const instances: RepoInstance[] = [];
    for (const [name, objs] of names) {
      const m = /^(.+)_(\d+)$/.exec(name);
      if (!m) continue;
      const host = m[1] as string;
      const port = Number(m[2]);
      let manifest: Manifest | undefined;
      if (objs.some((o) => o.key === `${prefix}${name}/${MANIFEST_OBJECT}`)) {
        try {
          manifest = (await readRepoManifest(repo, backupId, host, port))?.manifest;
        } catch {
          manifest = undefined;
        }
      }
      instances.push({ name, host, port, manifest, bytes: objs.reduce((n, o) => n + o.bytes, 0) });
    }
    const starts = instances.flatMap((i) => (i.manifest ? [Date.parse(i.manifest.startedAt)] : [])).filter((t) => Number.isFinite(t));
    const startedAt = new Date(starts.length > 0 ? Math.min(...starts) : Math.min(...objects.map((o) => o.modified.getTime())));
    out.push({ backupId, instances, objects, bytes: objects.reduce((n, o) => n + o.bytes, 0), startedAt });
  }
  return out.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime() || a.backupId.localeCompare(b.backupId));
}

/** Whether the manifest's objects were encrypted when stored (the key id is recorded then). */
const isEncrypted = (m: Manifest): boolean => m.encryption !== undefined;
