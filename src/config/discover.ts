import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, errorMessage } from '../errors.js';
import { loadInstanceConfig, type InstanceConfig } from './instance.js';

export interface Discovered {
  instances: InstanceConfig[];
  /** Files that could not be used; the others are still served. */
  errors: ConfigError[];
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
  return { instances, errors };
}
