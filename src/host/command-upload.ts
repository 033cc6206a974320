// `runner = command` with [repository] (README "Backup runners"): the platform's dbbackup writes
// its files into BackupDir as always; once it has exited 0, the supervisor uploads the files it
// created during the backup, with a manifest written last, as the built-in runners do. Only one
// backup of a host runs at a time (the host lock), so the files created meanwhile are this backup's.
import { createReadStream, type Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import type { Logger } from 'pino';
import { clusterNameOf } from '../config/repository.js';
import { isReplicaInstance, isSpiderInstance, type InstanceConfig } from '../config/instance.js';
import { withConnection } from '../db/connect.js';
import type { Repository } from '../repo/repository.js';
import type { Manifest, ManifestFile } from '../runner/manifest.js';
import {
  checkRepoCopy,
  discardTarget,
  earlierAttempts,
  prepareTarget,
  putManifest,
  repoTarget,
  uploadObject,
} from '../runner/repo-write.js';
import { CONNECT_TIMEOUT_MS, publishCheck } from '../runner/verdict.js';
import { listInstanceTasks, serverVersion } from '../sql/tasks.js';
import type { TaskKey } from '../task/task.js';

/** Every regular file under `dir` (relative paths), before the backup starts; symbolic links are not followed. */
export async function filesUnder(dir: string): Promise<Set<string>> {
  const found = new Set<string>();
  await walk(dir, async (path) => {
    found.add(relative(dir, path));
  });
  return found;
}

export interface CreatedFile {
  /** Relative to BackupDir, '/'-separated: the object's name below the instance's key. */
  name: string;
  path: string;
}

/**
 * The files the backup created: regular files under `dir` that were not there at the start and
 * whose ctime is at or after it (whole seconds: some file systems keep coarse times). ctime, not
 * mtime: a tool may copy a file with its old mtime, but its ctime is when it was created here.
 */
export async function filesCreatedSince(dir: string, before: ReadonlySet<string>, startedAtMs: number): Promise<CreatedFile[]> {
  const since = Math.floor(startedAtMs / 1000) * 1000;
  const created: CreatedFile[] = [];
  await walk(dir, async (path) => {
    const rel = relative(dir, path);
    if (before.has(rel)) return;
    const st = await lstat(path).catch(() => undefined);
    if (st?.isFile() && st.ctimeMs >= since) created.push({ name: rel.split(sep).join('/'), path });
  });
  return created.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function walk(dir: string, visit: (path: string) => Promise<void>): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) await walk(path, visit);
    else if (e.isFile()) await visit(path);
  }
}

export interface CommandUpload {
  repo: Repository;
  key: TaskKey;
  instance: InstanceConfig;
  files: readonly CreatedFile[];
  startedAt: Date;
  endedAt: Date;
  /** The backup command, whose program names the tool in the manifest. */
  argv: readonly string[];
  logger: Logger;
  onBytes: (stored: number) => void;
}

/**
 * Uploads the files, then the manifest, checks the stored copy and publishes the verdict on the
 * instance. Throws (a RepoError naming the store) when the backup did not get into the repository.
 */
export async function uploadCommandBackup(u: CommandUpload): Promise<{ bytes: number; where: string }> {
  const { key, instance, logger } = u;
  if (u.files.length === 0) throw new Error('the backup command created no file under BackupDir: nothing to upload');
  const target = repoTarget(u.repo, key);
  const { version, earlier } = await withConnection(
    instance,
    async (c) => ({
      version: await serverVersion(c),
      earlier: earlierAttempts(await listInstanceTasks(c, key.host, key.port), key),
    }),
    { connectTimeoutMs: CONNECT_TIMEOUT_MS },
  );
  const removed = await prepareTarget(target, earlier, key);
  if (removed.length > 0) logger.info({ removed }, 'removed what earlier attempts left in the repository');
  const files: ManifestFile[] = [];
  let keyId: string | undefined;
  let done = 0;
  let complete = false;
  let written: string;
  try {
    for (const f of u.files) {
      const up = await uploadObject(target, f.name, createReadStream(f.path), { onBytes: (n) => u.onBytes(done + n) });
      done += up.bytes;
      keyId = up.keyId;
      files.push({ name: up.name, bytes: up.bytes, sha256: up.sha256 });
    }
    const role = isSpiderInstance(instance) ? 'spider' : isReplicaInstance(instance) ? 'slave' : 'master';
    const manifest: Manifest = {
      format: 1,
      backupId: key.backupId,
      cluster: clusterNameOf(instance) ?? '',
      host: key.host,
      port: key.port,
      role,
      shardValue: key.shardValue,
      tool: { name: basename(u.argv[0] ?? 'command'), version: '' },
      compression: 'none',
      serverVersion: version,
      startedAt: u.startedAt.toISOString(),
      endedAt: u.endedAt.toISOString(),
      bytes: done,
      files,
      position: {},
      ...(keyId !== undefined ? { encryption: { keyId } } : {}),
    };
    written = await putManifest(target, manifest);
    complete = true;
  } finally {
    if (!complete) await discardTarget(target);
  }
  const check = await checkRepoCopy(target, written);
  const detail = await publishCheck(
    instance,
    isReplicaInstance(instance),
    key,
    check,
    { role: check.manifest?.role ?? '', tool: check.manifest?.tool.name ?? '', dir: target.where },
    (line) => logger.warn(line),
  );
  if (!check.ok) throw new Error(`uploaded, but the check of the stored copy failed: ${detail}`);
  return { bytes: done, where: target.where };
}
