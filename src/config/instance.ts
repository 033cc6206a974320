import { resolve } from 'node:path';
import { IniReader, readIni, type IniSections } from './ini-file.js';

/** One MySQL instance of this host, from its dbbackup.<port>.ini (the old tool's format). */
export interface InstanceConfig {
  file: string;
  host: string;
  port: number;
  user: string;
  password: string;
  role: string;
  shardValue: number;
  /** Every section as read, including the backup tool's own, which we never rewrite. */
  sections: IniSections;
}

export const SPIDER_PORTS = { min: 25000, max: 25999 } as const;

export function loadInstanceConfig(file: string): InstanceConfig {
  const path = resolve(file);
  const ini = new IniReader(path, readIni(path));
  return {
    file: path,
    host: ini.string('Public', 'MysqlHost'),
    port: ini.int('Public', 'MysqlPort', { min: 1, max: 65535 }),
    user: ini.string('Public', 'MysqlUser'),
    password: passwordOf(ini),
    role: ini.string('Public', 'MysqlRole', '').toLowerCase(),
    shardValue: ini.int('Public', 'ShardValue', { min: 0, fallback: 0 }),
    sections: ini.sections,
  };
}

function passwordOf(ini: IniReader): string {
  const v = ini.raw('Public', 'MysqlPasswd');
  if (v === undefined) throw ini.invalid('Public', 'MysqlPasswd', undefined, 'required (may be empty)');
  return typeof v === 'string' ? v : String(v);
}

/** A spider node runs the spider-master backup command and never deletes rows (SPEC §3). */
export function isSpiderInstance(inst: Pick<InstanceConfig, 'role' | 'port'>): boolean {
  return inst.role.startsWith('spider') || (inst.port >= SPIDER_PORTS.min && inst.port <= SPIDER_PORTS.max);
}

export function instanceName(inst: Pick<InstanceConfig, 'host' | 'port'>): string {
  return `${inst.host}:${inst.port}`;
}
