// Where a sandbox keeps its things under its base directory, and its state file: what `sandbox up`
// started (pids, ports, dirs), so that `sandbox down` stops exactly those and nothing else.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { OperationError } from '../errors.js';
import { writeFileAtomic } from '../fs.js';

export const STATE_FILE = 'sandbox.json';

export interface SandboxPaths {
  base: string;
  state: string;
  /** The cluster's mariadbd data dirs (src/sandbox/cluster.ts). */
  cluster: string;
  /** One dir per simulated host (loopback address): agent config, conf.d, state, host lock, log. */
  hosts: string;
  /** Each host's BackupDir, one dir per host (empty: backups go to the repository). */
  backups: string;
  /** The posix repository every host of the sandbox shares (README "Repository"). */
  repository: string;
  /** The keeper's own stdout/stderr. */
  keeperLog: string;
}

export function sandboxPaths(base: string): SandboxPaths {
  const b = resolve(base);
  return {
    base: b,
    state: join(b, STATE_FILE),
    cluster: join(b, 'cluster'),
    hosts: join(b, 'hosts'),
    backups: join(b, 'backups'),
    repository: join(b, 'repository'),
    keeperLog: join(b, 'keeper.log'),
  };
}

export interface HostPaths {
  dir: string;
  agentConfig: string;
  confDir: string;
  stateDir: string;
  hostLock: string;
  log: string;
  backupDir: string;
  /** The repository, shared by every host. */
  repository: string;
}

export function hostPaths(paths: SandboxPaths, address: string): HostPaths {
  const dir = join(paths.hosts, address);
  return {
    dir,
    agentConfig: join(dir, 'spiderbackup.ini'),
    confDir: join(dir, 'conf.d'),
    stateDir: join(dir, 'state'),
    hostLock: join(dir, 'lock', 'host.lock'),
    log: join(dir, 'agent.log'),
    backupDir: join(paths.backups, address),
    repository: paths.repository,
  };
}

export interface SandboxInstance {
  name: string;
  role: 'master' | 'slave' | 'spider' | 'tdbctl';
  host: string;
  port: number;
  socket: string;
  shardValue: number;
  /** The mariadbd's pid (for tdbctl: its backing database; the stand-in runs in the keeper). */
  pid: number | undefined;
}

export interface SandboxHost {
  address: string;
  agentConfig: string;
  log: string;
  daemonPid: number | undefined;
}

export interface SandboxState {
  base: string;
  keeperPid: number;
  startedAt: string;
  /** Set once everything runs; until then the sandbox is still starting. */
  ready: boolean;
  instances: SandboxInstance[];
  hosts: SandboxHost[];
  /** The agent config of the spider node's host: where `schedule` and `query` run. */
  spiderAgentConfig: string;
}

/** Every pid the sandbox recorded: keeper, mariadbd servers, agent daemons. */
export function recordedPids(s: SandboxState): number[] {
  const pids = [s.keeperPid, ...s.instances.map((i) => i.pid), ...s.hosts.map((h) => h.daemonPid)];
  return [...new Set(pids.filter((p): p is number => p !== undefined))];
}

export function writeState(paths: SandboxPaths, state: SandboxState): void {
  writeFileAtomic(paths.state, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644, durable: false });
}

export function readState(paths: SandboxPaths): SandboxState | undefined {
  if (!existsSync(paths.state)) return undefined;
  try {
    return JSON.parse(readFileSync(paths.state, 'utf8')) as SandboxState;
  } catch (err) {
    throw new OperationError(`${paths.state}: not a sandbox state file (${(err as Error).message})`);
  }
}
