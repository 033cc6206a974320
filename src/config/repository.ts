// `[repository]` of the agent config: where backups go off the host (README "Repository"). Only
// parsed and checked here; the files it names (keys, secrets) are read when the repository is
// opened, so an unreadable key fails the next backup by name instead of stopping the daemon.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { parseBytes } from './bytes.js';
import { IniReader } from './ini-file.js';
import type { InstanceConfig } from './instance.js';

export const REPOSITORY_TYPES = ['posix', 's3'] as const;
export const DEFAULT_PART_SIZE = 64 * 1024 ** 2;
/** S3's smallest part (but the last); Swift's s3api accepts 1,000 parts, so small parts cap the object size. */
const MIN_PART_SIZE = 5 * 1024 ** 2;
const MAX_PART_SIZE = 5 * 1024 ** 3;

export interface PosixStoreConfig {
  type: 'posix';
  path: string;
}

export interface S3StoreConfig {
  type: 's3';
  /** Unset: AWS's own endpoint for the region. */
  endpoint: string | undefined;
  bucket: string;
  region: string;
  accessKeyId: string;
  /** The secret inline (only in a file nobody else can read), or the owner-only file that holds it. */
  secret: { inline: string } | { file: string };
  forcePathStyle: boolean;
  caFile: string | undefined;
}

export interface RepositoryConfig {
  /** The agent config file, for messages. */
  file: string;
  store: PosixStoreConfig | S3StoreConfig;
  /** `[repository] prefix` as written; unset: from the drop-ins (repositoryPrefix). */
  prefix: string | undefined;
  encryptionKeyFile: string | undefined;
  encryptionOldKeyFiles: string[];
  /** Bytes per second; undefined: no limit. */
  rateLimit: number | undefined;
  partSize: number;
  retentionKeep: number | undefined;
  retentionDays: number | undefined;
}

/** The keys of [repository], for the agent schema's unknown-key check. */
export const REPOSITORY_KEYS = [
  'type',
  'path',
  'endpoint',
  'bucket',
  'region',
  'access_key_id',
  'secret_access_key',
  'secret_access_key_file',
  'force_path_style',
  'ca_file',
  'prefix',
  'encryption_key_file',
  'encryption_old_key_files',
  'rate_limit',
  'part_size',
  'retention_keep',
  'retention_days',
] as const;

const S = 'repository';

/** undefined when the file has no [repository] (or only its header, as the example): backups stay in BackupDir. */
export function repositoryConfig(ini: IniReader, cwd: string): RepositoryConfig | undefined {
  const section = ini.sections[S];
  if (section === undefined || typeof section !== 'object' || Object.keys(section).length === 0) return undefined;
  const type = ini.string(S, 'type');
  if (!(REPOSITORY_TYPES as readonly string[]).includes(type))
    throw ini.invalid(S, 'type', type, `must be one of ${REPOSITORY_TYPES.join(', ')}`);
  const path = (key: string): string | undefined => {
    const t = ini.optionalString(S, key);
    return t === undefined ? undefined : resolve(cwd, t);
  };
  const store = type === 'posix' ? posixStore(ini, path) : s3Store(ini, path);
  return {
    file: ini.file,
    store,
    prefix: prefixSetting(ini),
    encryptionKeyFile: path('encryption_key_file'),
    encryptionOldKeyFiles: (ini.optionalString(S, 'encryption_old_key_files') ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '')
      .map((p) => resolve(cwd, p)),
    rateLimit: size(ini, 'rate_limit', { min: 1024 }),
    partSize: size(ini, 'part_size', { min: MIN_PART_SIZE, max: MAX_PART_SIZE }) ?? DEFAULT_PART_SIZE,
    retentionKeep: optionalInt(ini, 'retention_keep', 1),
    retentionDays: optionalInt(ini, 'retention_days', 0),
  };
}

function posixStore(ini: IniReader, path: (key: string) => string | undefined): PosixStoreConfig {
  const p = path('path');
  if (p === undefined) throw new ConfigError(ini.file, '[repository] path', undefined, 'required with type = posix');
  return { type: 'posix', path: p };
}

function s3Store(ini: IniReader, path: (key: string) => string | undefined): S3StoreConfig {
  const endpoint = ini.optionalString(S, 'endpoint');
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint))
    throw ini.invalid(S, 'endpoint', endpoint, 'must be an http:// or https:// URL');
  const bucket = ini.string(S, 'bucket');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw ini.invalid(S, 'bucket', bucket, 'is not a valid bucket name');
  const inline = ini.optionalString(S, 'secret_access_key');
  const secretFile = path('secret_access_key_file');
  if (inline !== undefined && secretFile !== undefined)
    throw ini.invalid(S, 'secret_access_key', '(hidden)', 'give either secret_access_key or secret_access_key_file, not both');
  if (inline === undefined && secretFile === undefined)
    throw new ConfigError(ini.file, '[repository] secret_access_key_file', undefined, 'required with type = s3 (or secret_access_key)');
  if (inline !== undefined) refuseReadableByOthers(ini.file);
  return {
    type: 's3',
    endpoint,
    bucket,
    region: ini.string(S, 'region', 'us-east-1'),
    accessKeyId: ini.string(S, 'access_key_id'),
    secret: inline !== undefined ? { inline } : { file: secretFile as string },
    forcePathStyle: ini.bool(S, 'force_path_style', endpoint !== undefined),
    caFile: path('ca_file'),
  };
}

/** A secret written inline is as safe as the file it is in. The value is never repeated in the message. */
function refuseReadableByOthers(file: string): void {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return;
  }
  if ((mode & 0o077) !== 0)
    throw new ConfigError(
      file,
      '[repository] secret_access_key',
      '(hidden)',
      `the file is readable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it, or use secret_access_key_file`,
    );
}

function prefixSetting(ini: IniReader): string | undefined {
  const p = ini.optionalString(S, 'prefix');
  if (p === undefined) return undefined;
  if (cleanPrefix(p) !== p || p === '.' || p === '..') throw ini.invalid(S, 'prefix', p, 'may hold only letters, digits, ".", "_" and "-"');
  return p;
}

function size(ini: IniReader, key: string, bounds: { min: number; max?: number }): number | undefined {
  const t = ini.optionalString(S, key);
  if (t === undefined) return undefined;
  const n = parseBytes(t);
  if (n === undefined) throw ini.invalid(S, key, t, 'must be a size such as 50MiB, 64MiB or 1GiB (B, KiB, MiB, GiB)');
  if (n < bounds.min) throw ini.invalid(S, key, t, `must be at least ${bounds.min} bytes`);
  if (bounds.max !== undefined && n > bounds.max) throw ini.invalid(S, key, t, `must be at most ${bounds.max} bytes`);
  return n;
}

function optionalInt(ini: IniReader, key: string, min: number): number | undefined {
  return ini.optionalString(S, key) === undefined ? undefined : ini.int(S, key, { min });
}

/** Anything outside [A-Za-z0-9._-] becomes "_": a cluster address `10.0.0.1:25000` → `10.0.0.1_25000`. */
export const cleanPrefix = (text: string): string => text.replace(/[^A-Za-z0-9._-]/g, '_');

const CLUSTER_KEYS = ['ClusterAddress', 'ClusterId', 'ClusterName'] as const;

/** The cluster a drop-in names: the first of [Public] ClusterAddress / ClusterId / ClusterName that is set. */
export function clusterNameOf(instance: InstanceConfig): string | undefined {
  const ini = new IniReader(instance.file, instance.sections);
  for (const key of CLUSTER_KEYS) {
    const v = ini.raw('Public', key);
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return undefined;
}

/**
 * The repository prefix every host of a cluster must agree on: `[repository] prefix`, else the
 * cluster the drop-ins name, cleaned. Drop-ins naming different clusters, or none, cannot choose.
 */
export function repositoryPrefix(config: RepositoryConfig, instances: readonly InstanceConfig[]): string {
  if (config.prefix !== undefined) return config.prefix;
  const named = new Map<string, string>();
  for (const i of instances) {
    const c = clusterNameOf(i);
    if (c !== undefined && !named.has(c)) named.set(c, i.file);
  }
  const hint = `set [repository] prefix, or [Public] ${CLUSTER_KEYS.join(' / ')} in the drop-ins`;
  if (named.size === 0) throw new ConfigError(config.file, '[repository] prefix', undefined, `no drop-in names its cluster: ${hint}`);
  if (named.size > 1) {
    const which = [...named].map(([c, f]) => `${f}: ${c}`).join('; ');
    throw new ConfigError(config.file, '[repository] prefix', undefined, `the drop-ins name different clusters (${which}): set it`);
  }
  return cleanPrefix([...named.keys()][0] as string);
}
