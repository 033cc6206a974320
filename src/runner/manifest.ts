// The manifest of one instance's backup (README "Backup runners"): written last and atomically
// into its directory. A directory without one is incomplete by definition. Checking a directory
// against its manifest is what the agent does right after the backup and what `verify` repeats.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { writeFileAtomic } from '../fs.js';
import { isPlainName } from './paths.js';
import type { Position } from './tools.js';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 1;

export interface ManifestFile {
  name: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  backupId: string;
  /** The spider node's address as the instance ini names it ([Public] ClusterAddress …); '' when unknown. */
  cluster: string;
  host: string;
  port: number;
  role: string;
  shardValue: number;
  tool: { name: string; version: string };
  compression: string;
  serverVersion: string;
  startedAt: string;
  endedAt: string;
  bytes: number;
  files: ManifestFile[];
  /** This instance's own binlog position (empty for a replica's dump: see masterPosition). */
  position: Position;
  /**
   * A replica's backup: its master's position (mariadb-backup --slave-info, mariadb-dump
   * --dump-slave), where a restore rolls forward from with the master's binlogs. Absent in
   * manifests written before it was recorded.
   */
  masterPosition?: Position;
  /**
   * In the repository, when its objects are encrypted: the key's id (README "Repository"). The
   * files' bytes and sha256 are then those of the stored ciphertext.
   */
  encryption?: { keyId: string };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function describeFile(dir: string, name: string): Promise<ManifestFile> {
  const path = join(dir, name);
  return { name, bytes: statSync(path).size, sha256: await sha256File(path) };
}

export const sha256Text = (text: string): string => createHash('sha256').update(text).digest('hex');

export function manifestText(m: Manifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

/** Durable and atomic: the manifest is either absent or whole, also after a power cut. Returns its text. */
export function writeManifest(dir: string, m: Manifest): string {
  const text = manifestText(m);
  writeFileAtomic(join(dir, MANIFEST_FILE), text, { mode: 0o640, durable: true });
  return text;
}

export interface DirCheck {
  ok: boolean;
  /** One line per problem, naming the file. */
  problems: string[];
  /** sha256 of manifest.json as found; undefined when it is missing. */
  manifestSha256: string | undefined;
  manifest: Manifest | undefined;
}

/**
 * Checks a backup directory against its own manifest (and, when given, against the manifest digest
 * published at backup time): every listed file present with its size and sha256.
 */
export async function checkBackupDir(dir: string, expectedManifestSha256?: string): Promise<DirCheck> {
  const path = join(dir, MANIFEST_FILE);
  const fail = (problem: string): DirCheck => ({ ok: false, problems: [problem], manifestSha256: undefined, manifest: undefined });
  const atDir = lookAt(dir);
  if (atDir.kind === 'missing') return fail(`${dir}: directory missing`);
  if (atDir.kind === 'unreadable') return fail(atDir.problem);
  const atManifest = lookAt(path);
  if (atManifest.kind === 'missing') return fail(`${path}: manifest missing (incomplete backup)`);
  if (atManifest.kind === 'unreadable') return fail(atManifest.problem);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return fail(unreadable(path, err));
  }
  const digest = sha256Text(text);
  const problems: string[] = [];
  if (expectedManifestSha256 !== undefined && expectedManifestSha256 !== digest)
    problems.push(`${path}: sha256 ${digest.slice(0, 12)}… differs from the published ${expectedManifestSha256.slice(0, 12)}…`);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
    if (!Array.isArray(manifest.files)) throw new Error('no files list');
  } catch (err) {
    return {
      ok: false,
      problems: [...problems, `${path}: not a manifest (${(err as Error).message})`],
      manifestSha256: digest,
      manifest: undefined,
    };
  }
  for (const f of manifest.files) {
    // A tampered manifest may name any path: an entry that is not a plain file name in this
    // directory is a failure by itself, never stat'ed or read.
    if (typeof f.name !== 'string' || !isPlainName(f.name)) {
      problems.push(`${path}: entry ${JSON.stringify(f.name)} names a file outside ${dir}; not read`);
      continue;
    }
    const p = join(dir, f.name);
    const at = lookAt(p);
    if (at.kind !== 'here') {
      problems.push(at.kind === 'missing' ? `${p}: missing` : at.problem);
      continue;
    }
    if (at.size !== f.bytes) {
      problems.push(`${p}: ${at.size} bytes, manifest says ${f.bytes}`);
      continue;
    }
    let sum: string;
    try {
      sum = await sha256File(p);
    } catch (err) {
      problems.push(unreadable(p, err));
      continue;
    }
    if (sum !== f.sha256) problems.push(`${p}: sha256 mismatch (${sum.slice(0, 12)}…, manifest says ${f.sha256.slice(0, 12)}…)`);
  }
  return { ok: problems.length === 0, problems, manifestSha256: digest, manifest };
}

export type Look = { kind: 'here'; size: number } | { kind: 'missing' } | { kind: 'unreadable'; problem: string };

/**
 * Whether a path is there. Only "no such file" is missing: a path this user may not read may well
 * be there, and is named as unreadable, with why.
 */
export function lookAt(path: string): Look {
  try {
    return { kind: 'here', size: statSync(path).size };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
    return { kind: 'unreadable', problem: unreadable(path, err) };
  }
}

/** The problem of a path that could not be stat'ed or read: a permission names who can. */
export function unreadable(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM')
    return `cannot read ${path}: permission denied (run as the service user that wrote the backup)`;
  return `cannot read ${path}: ${errorMessage(err)}`;
}
