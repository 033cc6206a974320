// What the restore drill reads of its target file (the `restore` command's target.json): that it
// says "scratch": true, and the login of each instance, for the check through the restored spider
// node and for the wipe afterwards. The restore itself reads the file on its own; this reader
// only refuses what the drill cannot use, naming the file and the field.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, errorMessage } from '../errors.js';
import type { Endpoint } from '../db/connect.js';
import type { RestoreRole } from './job.js';

export interface DrillInstance extends Endpoint {
  role: RestoreRole;
  /** The shard's ShardValue; 0 for a spider node. */
  shard: number;
}

export interface DrillTarget {
  file: string;
  /** spider[0] first: the check reads through it. */
  spiders: DrillInstance[];
  /** Shard masters and their replicas, in shard order. */
  shards: DrillInstance[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The target file as the drill needs it; a ConfigError naming the file and the field when it
 * cannot be read, does not say "scratch": true (the drill wipes its instances), or names an
 * instance without a usable login.
 */
export function readDrillTarget(file: string): DrillTarget {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(file, undefined, undefined, `the drill's target file cannot be read: ${errorMessage(err)}`);
  }
  if (!isObject(doc)) throw new ConfigError(file, undefined, undefined, 'the target file is not a JSON object');
  if (doc.scratch !== true)
    throw new ConfigError(
      file,
      'scratch',
      doc.scratch,
      'a drill target must say "scratch": true (the drill wipes these instances before and after it restores onto them)',
    );
  const login = (where: string, inst: Json): { user: string; password: string } => {
    const user = inst.user ?? doc.user;
    const passwordFile = inst.password_file ?? doc.password_file;
    if (typeof user !== 'string' || user === '')
      throw new ConfigError(file, `${where}.user`, user, 'no login user (per instance or at the top)');
    if (typeof passwordFile !== 'string' || passwordFile === '')
      throw new ConfigError(file, `${where}.password_file`, passwordFile, 'no password file (per instance or at the top)');
    const path = resolve(dirname(file), passwordFile);
    let password: string;
    try {
      password = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(file, `${where}.password_file`, passwordFile, `cannot be read: ${errorMessage(err)}`);
    }
    return { user, password };
  };
  const instance = (where: string, v: unknown, role: RestoreRole, shard: number): DrillInstance => {
    if (!isObject(v)) throw new ConfigError(file, where, v, 'not an object with host and port');
    const { host, port } = v;
    if (typeof host !== 'string' || host === '') throw new ConfigError(file, `${where}.host`, host, 'not a host name');
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
      throw new ConfigError(file, `${where}.port`, port, 'not a port (1-65535)');
    return { host, port, ...login(where, v), role, shard, file };
  };
  if (!Array.isArray(doc.spider) || doc.spider.length === 0)
    throw new ConfigError(file, 'spider', doc.spider, 'needs at least one spider node ({"host": …, "port": …})');
  const spiders = doc.spider.map((s, i) => instance(`spider[${i}]`, s, 'spider', 0));
  if (!isObject(doc.shards) || Object.keys(doc.shards).length === 0)
    throw new ConfigError(file, 'shards', doc.shards, 'needs the shard masters by shard value ({"0": {"host": …, "port": …}, …})');
  const shards: DrillInstance[] = [];
  for (const [key, v] of Object.entries(doc.shards).sort(([a], [b]) => Number(a) - Number(b))) {
    const shard = Number(key);
    if (!/^\d+$/.test(key)) throw new ConfigError(file, `shards.${key}`, key, 'a shard is named by its shard value (0, 1, …)');
    shards.push(instance(`shards.${key}`, v, 'master', shard));
    const replicas = isObject(v) ? v.replicas : undefined;
    if (replicas === undefined) continue;
    if (!Array.isArray(replicas)) throw new ConfigError(file, `shards.${key}.replicas`, replicas, 'not a list of instances');
    replicas.forEach((r, i) => shards.push(instance(`shards.${key}.replicas[${i}]`, r, 'replica', shard)));
  }
  return { file, spiders, shards };
}
