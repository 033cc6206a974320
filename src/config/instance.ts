import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { IniReader, readIniText, type IniSections } from './ini-file.js';

/** One MySQL instance of this host, from its dbbackup.<port>.ini (the old tool's format). */
export interface InstanceConfig {
  file: string;
  host: string;
  port: number;
  user: string;
  password: string;
  /**
   * Set when MysqlPasswd was written unquoted with a `;` or `#` in it, which both INI readers
   * take as the start of a comment. Names file and key, never the password; see
   * explainAccessDenied.
   */
  passwordWarning: string | undefined;
  role: string;
  shardValue: number;
  /** Every section as read, including the backup tool's own, which we never rewrite. */
  sections: IniSections;
}

/**
 * Where an instance's backups go: [Public] BackupDir of its ini. Missing or relative is a
 * ConfigError: a relative path would depend on whichever directory the runner started in.
 */
export function backupDirOf(instance: Pick<InstanceConfig, 'file' | 'sections'>): string {
  const dir = new IniReader(instance.file, instance.sections).string('Public', 'BackupDir');
  if (!isAbsolute(dir)) throw new ConfigError(instance.file, '[Public] BackupDir', dir, 'must be an absolute path');
  return dir;
}

export const SPIDER_PORTS = { min: 25000, max: 25999 } as const;

/** TenDB places a spider node's tdbctl at its port + this (bk-dbm `GetTdbctlPortBySpider`). */
export const TDBCTL_PORT_OFFSET = 1000;

const PASSWORD_SECTION = 'Public';
const PASSWORD_KEY = 'MysqlPasswd';

export function loadInstanceConfig(file: string): InstanceConfig {
  const path = resolve(file);
  const { text, sections } = readIniText(path);
  const ini = new IniReader(path, sections);
  const { password, warning } = passwordOf(ini, text);
  return {
    file: path,
    host: ini.string('Public', 'MysqlHost'),
    port: ini.int('Public', 'MysqlPort', { min: 1, max: 65535 }),
    user: ini.string('Public', 'MysqlUser'),
    password,
    passwordWarning: warning,
    role: ini.string('Public', 'MysqlRole', '').toLowerCase(),
    shardValue: ini.int('Public', 'ShardValue', { min: 0, fallback: 0 }),
    sections: ini.sections,
  };
}

/**
 * The backup tool reads this same file with go-ini, so the password must be read the way go-ini
 * reads it, or the two would log in with different passwords. `ini` strips comments before we
 * see the value and knows no backticks, hence the raw line.
 */
function passwordOf(ini: IniReader, text: string): { password: string; warning: string | undefined } {
  const raw = rawValue(text, PASSWORD_SECTION, PASSWORD_KEY);
  if (raw === undefined) {
    // A form the line scan does not know (a quoted key name …): trust `ini`.
    const v = ini.raw(PASSWORD_SECTION, PASSWORD_KEY);
    if (v === undefined) throw ini.invalid(PASSWORD_SECTION, PASSWORD_KEY, undefined, 'required (may be empty)');
    return { password: typeof v === 'string' ? v : String(v), warning: undefined };
  }
  const value = goIniValue(raw);
  if (value.unclosed !== undefined) {
    // No value in the message: it is the password.
    throw new ConfigError(
      ini.file,
      undefined,
      undefined,
      `[${PASSWORD_SECTION}] ${PASSWORD_KEY}: the opening ${value.unclosed} has no closing ${value.unclosed} on the same line`,
    );
  }
  const warning =
    value.cutAt === undefined
      ? undefined
      : `${ini.file}: [${PASSWORD_SECTION}] ${PASSWORD_KEY} contains an unquoted '${value.cutAt}': everything from it on is read as a ` +
        `comment; write the password as \`…\` (backticks; the backup tool does not honour "…" around a ; or #)`;
  return { password: value.value, warning };
}

/**
 * The text after `=` of the last `key` line in `[section]`, as written; undefined when there is
 * none. Mirrors how `ini` and go-ini find sections and keys: `#`/`;` lines are comments, a
 * section header is `[name]`, the key ends at the first `=`.
 */
export function rawValue(text: string, section: string, key: string): string | undefined {
  let current: string | undefined;
  let found: string | undefined;
  for (const line of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    const t = line.trimStart();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue;
    if (t.startsWith('[')) {
      const close = t.lastIndexOf(']');
      if (close > 0) current = t.slice(1, close);
      continue;
    }
    if (current !== section) continue;
    const eq = t.indexOf('=');
    if (eq > 0 && t.slice(0, eq).trim() === key) found = t.slice(eq + 1);
  }
  return found;
}

/**
 * A value as go-ini reads it with default options: `` `…` `` and `"""…"""` are literal up to the
 * last closing quote on the line; otherwise the first `;` or `#` starts a comment, and a plain
 * "…" or '…' around what is left is taken off. A "…" does not protect a `;` or `#` there.
 */
export function goIniValue(raw: string): { value: string; cutAt?: ';' | '#'; unclosed?: string } {
  const line = raw.trimStart();
  const quote = line.startsWith('"""') && line.length > 3 ? '"""' : line.startsWith('`') ? '`' : undefined;
  if (quote !== undefined) {
    const rest = line.slice(quote.length);
    const close = rest.lastIndexOf(quote);
    if (close === -1) return { value: '', unclosed: quote };
    return { value: rest.slice(0, close) };
  }
  let value = line.trim();
  const cut = value.search(/[;#]/);
  let cutAt: ';' | '#' | undefined;
  if (cut !== -1) {
    cutAt = value[cut] as ';' | '#';
    value = value.slice(0, cut).trim();
  }
  for (const q of ['"', "'"]) {
    if (value.length >= 2 && value.startsWith(q) && value.endsWith(q) && value.indexOf(q, 1) === value.length - 1) {
      value = value.slice(1, -1);
      break;
    }
  }
  return cutAt === undefined ? { value } : { value, cutAt };
}

/**
 * For the db layer: an "Access denied" message gets the instance's password warning appended, since
 * a password cut at `;` or `#` is the likely cause. Other messages are returned as they are.
 */
export function explainAccessDenied(instance: Pick<InstanceConfig, 'passwordWarning'>, message: string): string {
  if (instance.passwordWarning === undefined || !/access denied/i.test(message)) return message;
  return `${message} (${instance.passwordWarning})`;
}

/** A spider node runs the spider-master backup command and never deletes rows (SPEC §3). */
export function isSpiderInstance(inst: Pick<InstanceConfig, 'role' | 'port'>): boolean {
  return inst.role.startsWith('spider') || (inst.port >= SPIDER_PORTS.min && inst.port <= SPIDER_PORTS.max);
}

/**
 * A replica by its drop-in's MysqlRole (`slave`, TenDB's `remote_slave`): the agent's own writes
 * there stay out of its binary log (sql/unlogged.ts). A spider node is never one.
 */
export function isReplicaInstance(inst: Pick<InstanceConfig, 'role' | 'port'>): boolean {
  return !isSpiderInstance(inst) && (inst.role === 'slave' || inst.role === 'remote_slave');
}

export function instanceName(inst: Pick<InstanceConfig, 'host' | 'port'>): string {
  return `${inst.host}:${inst.port}`;
}

/**
 * What an instance is, in the words of an error: which role its drop-in gives (a tdbctl node by a
 * MysqlRole naming it, a spider node by isSpiderInstance, else a replica or a shard master).
 */
export function roleWords(inst: Pick<InstanceConfig, 'role' | 'port'>): string {
  const given = `MysqlRole ${inst.role === '' ? '(none)' : inst.role}, port ${inst.port}`;
  if (inst.role.includes('tdbctl')) return `a tdbctl node (${given})`;
  if (isSpiderInstance(inst)) return `a spider node (${given})`;
  return `${isReplicaInstance(inst) ? 'a replica' : 'a shard master'} (${given})`;
}

/** What a spider-side command needs of -c, for the error when it is given something else. */
export const SPIDER_INI_WANTED = `a spider node's ini (MysqlRole spider_master, or a port ${SPIDER_PORTS.min}-${SPIDER_PORTS.max})`;
