// The clusters a whole-cluster restore runs between (src/recovery), as the restore tests and
// bench/restore-cluster.ts set them up: a source backed up into a posix repository, and targets
// (new instances on loopback addresses of their own) whose agents take the restore's tasks from
// that repository. Each caller adds its own workspaces and settings.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ADMIN_USER, type Cluster, type Instance } from '../../src/sandbox/cluster.js';
import { setUpCluster, type SetUpOptions, type TestCluster } from './cluster.js';
import { waitFor } from './workspace.js';

/** The [repository] section of a posix repository at `path`. */
export const posixRepository = (path: string, prefix: string) => ({ type: 'posix', path, prefix });

/** The admin password in a file of its own under `dir` (target.json names password files, never passwords). */
export function writePasswordFile(dir: string, name = 'target.pw'): string {
  const path = join(dir, name);
  writeFileSync(path, `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
  return path;
}

/**
 * A target file (README "Restoring a cluster") naming the targets' spider nodes (all of `spiders`,
 * by default the first spider node) and every shard master, with the admin login by its password
 * file; `extra` fields on top (e.g. `scratch`). Returns `path`.
 */
export function writeTargetFile(
  path: string,
  targets: Cluster,
  passwordFile: string,
  opts: { spiders?: readonly Instance[]; extra?: Record<string, unknown> } = {},
): string {
  const doc = {
    spider: (opts.spiders ?? [targets.spider]).map((s) => ({ host: s.host, port: s.port })),
    shards: Object.fromEntries(targets.masters.map((m, i) => [String(i), { host: m.host, port: m.port }])),
    user: ADMIN_USER,
    password_file: passwordFile,
    ...opts.extra,
  };
  writeFileSync(path, JSON.stringify(doc, null, 2));
  return path;
}

/** The source: 2 shard masters (unless said) on hosts of their own, one spider node with internal XA, tdbctl. */
export function setUpSource<W extends string = never>(opts: SetUpOptions<W>): Promise<TestCluster<W>> {
  return setUpCluster<W>({ shards: 2, slaves: [], hosts: 'distinct', spiders: 1, spiderInternalXa: true, tdbctl: true, ...opts });
}

/** The targets: 2 shard masters (unless said) and a spider node, each on its own address from 127.0.0.`firstHost` up. */
export function setUpTargets<W extends string = never>(firstHost: number, opts: SetUpOptions<W>): Promise<TestCluster<W>> {
  let next = firstHost;
  return setUpCluster<W>({ shards: 2, slaves: [], spiders: 1, ...opts, hosts: () => `127.0.0.${next++}` });
}

/** Until an agent has announced itself on each of `instances` (a restore refuses a target no agent serves). */
export async function waitForPresence(cluster: Cluster, instances: readonly Instance[], timeoutMs?: number): Promise<void> {
  for (const inst of instances)
    await waitFor(
      `presence of ${inst.name}`,
      async () => {
        try {
          return (await cluster.query(inst, 'SELECT 1 FROM infodba_schema.spiderbackup_presence WHERE Port = ?', [inst.port])).length > 0;
        } catch {
          return false; // no presence table yet
        }
      },
      timeoutMs,
    );
}
