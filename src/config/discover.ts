import { readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ConfigError, errorMessage } from '../errors.js';
import { isSpiderInstance, loadInstanceConfig, TDBCTL_PORT_OFFSET, type InstanceConfig } from './instance.js';

export interface Discovered {
  instances: InstanceConfig[];
  /** Files that could not be used; the others are still served. */
  errors: ConfigError[];
  /**
   * The tdbctl control node's own drop-ins: never served (the spider master's backup command
   * covers it, as the old tool's did), but the spider-side commands read its address from it.
   */
  tdbctl: TdbctlDropIn[];
}

export interface TdbctlDropIn {
  instance: InstanceConfig;
  /** The spider node it belongs to; undefined when only its MysqlRole says tdbctl. */
  spiderPort: number | undefined;
  /** The line `status` shows for it. */
  note: string;
}

const DROP_IN = /^dbbackup\.\d+\.ini$/;

/** The instance files to serve: the `-c` list when given, else dbbackup.<port>.ini in configDir. */
export function instanceFiles(configDir: string, explicit: readonly string[] | undefined): string[] {
  if (explicit && explicit.length > 0) return explicit.map((f) => resolve(f));
  let names: string[];
  try {
    names = readdirSync(configDir);
  } catch (err) {
    throw new ConfigError(configDir, '[agent] config_dir', configDir, `cannot list: ${errorMessage(err)}`);
  }
  return names
    .filter((n) => DROP_IN.test(n))
    .sort()
    .map((n) => join(configDir, n));
}

export function discoverInstances(configDir: string, explicit?: readonly string[]): Discovered {
  const instances: InstanceConfig[] = [];
  const errors: ConfigError[] = [];
  const seen = new Map<number, string>();
  for (const file of instanceFiles(configDir, explicit)) {
    try {
      const inst = loadInstanceConfig(file);
      const other = seen.get(inst.port);
      if (other !== undefined) {
        errors.push(new ConfigError(file, '[Public] MysqlPort', String(inst.port), `same port as ${other}; file skipped`));
        continue;
      }
      seen.set(inst.port, file);
      instances.push(inst);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      errors.push(err);
    }
  }
  instances.sort((a, b) => a.port - b.port);
  const tdbctl = tdbctlDropIns(instances);
  return { instances: instances.filter((i) => !tdbctl.some((t) => t.instance === i)), errors, tdbctl };
}

/**
 * The old tool's rule (bk-dbm mysql-dbbackup `findSpiderBackupConfigFile`, via
 * `GetTdbctlPortBySpider`): tdbctl listens at its spider node's port + 1000. So a drop-in at
 * another drop-in's spider port + 1000, or one whose MysqlRole names tdbctl, is tdbctl's own.
 * `instances` in port order, so a spider node is judged before the port 1000 above it.
 */
export function tdbctlDropIns(instances: readonly InstanceConfig[]): TdbctlDropIn[] {
  const found: TdbctlDropIn[] = [];
  const byPort = new Map(instances.map((i) => [i.port, i]));
  for (const inst of instances) {
    const below = byPort.get(inst.port - TDBCTL_PORT_OFFSET);
    const spider = below !== undefined && isSpiderInstance(below) && !found.some((t) => t.instance === below) ? below : undefined;
    if (spider === undefined && !inst.role.includes('tdbctl')) continue;
    const name = basename(inst.file);
    found.push({
      instance: inst,
      spiderPort: spider?.port,
      note:
        spider === undefined
          ? `${name}: MysqlRole ${inst.role} (a tdbctl node), not backed up by the agent`
          : `${name}: tdbctl of the spider node ${spider.port}, not backed up by the agent`,
    });
  }
  return found;
}
