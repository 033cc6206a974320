// Credentials for a MariaDB client tool without putting them on its command line (visible to every
// user in ps): an option file only the owner can read, in a private directory, removed after use.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DefaultsFile {
  path: string;
  /** A private (0700) directory beside it, for the tool's own temporary files. */
  dir: string;
  remove(): void;
}

/** An option-file value in double quotes: backslash escapes as the MariaDB option parser reads them. */
export function optionValue(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}

export function writeDefaultsFile(ep: { host: string; port: number; user: string; password: string }, groups: string[]): DefaultsFile {
  // The name must not contain "spiderbackup": signals meant for the agent's own processes are
  // sent by name (README "Logs"), and the tool must not get them.
  const dir = mkdtempSync(join(tmpdir(), 'sbrun-'));
  const path = join(dir, 'client.cnf');
  const body = [
    `host=${optionValue(ep.host)}`,
    `port=${ep.port}`,
    `user=${optionValue(ep.user)}`,
    `password=${optionValue(ep.password)}`,
  ].join('\n');
  writeFileSync(path, groups.map((g) => `[${g}]\n${body}\n`).join('\n'), { mode: 0o600, flag: 'wx' });
  return { path, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
