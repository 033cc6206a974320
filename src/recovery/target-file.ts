// target.json of `spiderbackup restore` (issue 20 item 1): the new cluster's instances, the
// login the command and Spider use on them, and whether they may be wiped. Parsed strictly: an
// unknown key is a typo the restore must not guess past, and every error names the file, the field
// and the value. Passwords stay in their files: only the paths are kept (the agents read them on
// their own hosts), and no content is ever printed.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Address } from './job.js';

/** A target instance with the login to use on it (the password in a file). */
export interface TargetInstance extends Address {
  user: string;
  passwordFile: string;
}

export interface TargetShard {
  shardValue: number;
  master: TargetInstance;
  replicas: TargetInstance[];
}

export interface TargetFile {
  file: string;
  spider: TargetInstance[];
  tdbctl?: TargetInstance;
  /** By ShardValue, ascending. */
  shards: TargetShard[];
  /** The replicas' replication login (needed when any shard has a replica). */
  replication?: { user: string; passwordFile: string };
  scratch: boolean;
}

const TOP_KEYS = ['spider', 'tdbctl', 'shards', 'user', 'password_file', 'replication', 'scratch'];
const INSTANCE_KEYS = ['host', 'port', 'user', 'password_file'];
const SHARD_KEYS = [...INSTANCE_KEYS, 'replicas'];
const LOGIN_KEYS = ['user', 'password_file'];

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads and checks target.json; a ConfigError naming the file, the field and the value otherwise. */
export function readTargetFile(path: string): TargetFile {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, undefined, undefined, `cannot read the target file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, undefined, undefined, `not valid JSON: ${(err as Error).message}`);
  }
  return parseTargetFile(file, doc);
}

/** The checks of readTargetFile on an already parsed document (`file` for the messages and relative paths). */
export function parseTargetFile(file: string, doc: unknown): TargetFile {
  const fail = (field: string, value: unknown, problem: string): never => {
    throw new ConfigError(file, field, value, problem);
  };
  if (!isObject(doc)) return fail('(top level)', doc, 'expected an object {"spider": [...], "shards": {...}, ...}');
  const unknown = (obj: Json, allowed: readonly string[], at: string) => {
    for (const k of Object.keys(obj))
      if (!allowed.includes(k)) fail(`${at}${k}`, obj[k], `unknown field (expected one of ${allowed.join(', ')})`);
  };
  unknown(doc, TOP_KEYS, '');
  const base = dirname(file);
  const str = (obj: Json, key: string, at: string, required: boolean): string | undefined => {
    const v = obj[key];
    if (v === undefined) return required ? fail(`${at}${key}`, v, 'required') : undefined;
    if (typeof v !== 'string' || v.trim() === '') return fail(`${at}${key}`, v, 'expected a non-empty string');
    return v;
  };
  const passwordFile = (obj: Json, at: string): string | undefined => {
    const v = str(obj, 'password_file', at, false);
    if (v === undefined) return undefined;
    const path = resolve(base, v);
    try {
      if (!statSync(path).isFile()) fail(`${at}password_file`, v, 'not a regular file');
      accessSync(path, constants.R_OK);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      fail(`${at}password_file`, v, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    return path;
  };
  const user = str(doc, 'user', '', false);
  const password = passwordFile(doc, '');
  const instance = (v: unknown, at: string, keys: readonly string[]): TargetInstance => {
    if (!isObject(v)) return fail(at, v, 'expected an object {"host": …, "port": …}');
    unknown(v, keys, `${at}.`);
    const host = str(v, 'host', `${at}.`, true) as string;
    const port = v.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
      fail(`${at}.port`, port, 'expected a port number (1-65535)');
    const u = str(v, 'user', `${at}.`, false) ?? user;
    const p = passwordFile(v, `${at}.`) ?? password;
    if (u === undefined) fail(`${at}.user`, undefined, 'required (here or at the top level)');
    if (p === undefined) fail(`${at}.password_file`, undefined, 'required (here or at the top level)');
    return { host, port: port as number, user: u as string, passwordFile: p as string };
  };

  const spiderList = doc.spider;
  if (!Array.isArray(spiderList) || spiderList.length === 0)
    fail('spider', spiderList, 'expected a non-empty list of the new spider nodes [{"host": …, "port": …}]');
  const spider = (spiderList as unknown[]).map((s, i) => instance(s, `spider[${i}]`, INSTANCE_KEYS));
  const tdbctl = doc.tdbctl === undefined ? undefined : instance(doc.tdbctl, 'tdbctl', INSTANCE_KEYS);

  const shardsDoc = doc.shards;
  if (!isObject(shardsDoc) || Object.keys(shardsDoc).length === 0)
    fail('shards', shardsDoc, 'expected an object of the new shards by ShardValue {"0": {"host": …, "port": …}, …}');
  const shards: TargetShard[] = [];
  for (const [key, v] of Object.entries(shardsDoc as Json)) {
    if (!/^(0|[1-9]\d{0,8})$/.test(key)) fail(`shards."${key}"`, key, 'a shard key is a ShardValue (0, 1, 2 …)');
    const at = `shards."${key}"`;
    const master = instance(v, at, SHARD_KEYS);
    const list = (v as Json).replicas;
    if (list !== undefined && !Array.isArray(list)) fail(`${at}.replicas`, list, 'expected a list [{"host": …, "port": …}]');
    const replicas = ((list as unknown[] | undefined) ?? []).map((r, i) => instance(r, `${at}.replicas[${i}]`, INSTANCE_KEYS));
    shards.push({ shardValue: Number(key), master, replicas });
  }
  shards.sort((a, b) => a.shardValue - b.shardValue);

  let replication: TargetFile['replication'];
  if (doc.replication !== undefined) {
    const r = doc.replication;
    if (!isObject(r)) fail('replication', r, 'expected an object {"user": …, "password_file": …}');
    unknown(r as Json, LOGIN_KEYS, 'replication.');
    replication = {
      user: str(r as Json, 'user', 'replication.', true) as string,
      passwordFile: passwordFile(r as Json, 'replication.') ?? (fail('replication.password_file', undefined, 'required') as never),
    };
  }
  if (!replication && shards.some((s) => s.replicas.length > 0)) {
    const first = shards.find((s) => s.replicas.length > 0) as TargetShard;
    fail(
      'replication',
      undefined,
      `required: shard ${first.shardValue} has replicas, which replicate from their new master with this login`,
    );
  }
  const scratch = doc.scratch ?? false;
  if (typeof scratch !== 'boolean') fail('scratch', scratch, 'expected true or false');

  // One instance, one task: the same address twice would be restored over itself.
  const seen = new Map<string, string>();
  const named: [string, TargetInstance][] = [
    ...spider.map((s, i): [string, TargetInstance] => [`spider[${i}]`, s]),
    ...(tdbctl ? [['tdbctl', tdbctl] as [string, TargetInstance]] : []),
    ...shards.flatMap((s) => [
      [`shards."${s.shardValue}"`, s.master] as [string, TargetInstance],
      ...s.replicas.map((r, i): [string, TargetInstance] => [`shards."${s.shardValue}".replicas[${i}]`, r]),
    ]),
  ];
  for (const [at, inst] of named) {
    const key = `${inst.host}:${inst.port}`;
    const before = seen.get(key);
    if (before !== undefined) fail(at, key, `the same instance as ${before}`);
    seen.set(key, at);
  }
  return { file, spider, ...(tdbctl ? { tdbctl } : {}), shards, ...(replication ? { replication } : {}), scratch: scratch as boolean };
}

/** Every target instance (spider nodes, shard masters and replicas; not tdbctl, which gets no task). */
export function targetInstances(t: TargetFile): TargetInstance[] {
  return [...t.shards.flatMap((s) => [s.master, ...s.replicas]), ...t.spider];
}

/** The password in a password file: its first line, without the line end (never printed). */
export function readPasswordFile(path: string): string {
  return readFileSync(path, 'utf8').split(/\r?\n/)[0] ?? '';
}
