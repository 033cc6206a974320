// The agent config of one simulated host of the sandbox: short tick and wait intervals so the demo
// runs in seconds, its own state dir and host lock (the daemon lock is per host lock), a log file,
// and the sandbox's posix repository, which every host shares (nothing but MariaDB is needed).
import type { HostPaths } from './layout.js';

/**
 * The demo's backup runner: the [backup] keys of every host, the one place that chooses it. The
 * built-in mariadb-dump runner: quick on a small sandbox, and its files are what `verify` checks.
 */
export function demoBackupSection(): Record<string, string> {
  return { runner: 'mariadb-dump', kill_grace: '2s' };
}

export function demoAgentConfig(h: HostPaths, tick: string): string {
  const sections: Record<string, Record<string, string>> = {
    agent: { config_dir: h.confDir, state_dir: h.stateDir, host_lock: h.hostLock, tick_interval: tick },
    backup: { install_dir: h.dir, ...demoBackupSection() },
    schedule: { wait_interval: tick },
    log: { file: h.log },
    metrics: { listen: 'off' },
    repository: { type: 'posix', path: h.repository, prefix: 'demo' },
    // Simulated hosts: the machine's own mysql-crond, if any, is not theirs to warn about.
    migration: { mysql_crond: 'off' },
  };
  return Object.entries(sections)
    .map(
      ([name, kv]) =>
        `[${name}]\n${Object.entries(kv)
          .map(([k, v]) => `${k} = ${v}\n`)
          .join('')}`,
    )
    .join('\n');
}
