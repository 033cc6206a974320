// The cluster an integration test file runs against, and the simulated hosts around it: one call
// starts the real topology (src/sandbox/cluster.ts), sets what the file needs on it and creates the
// workspaces (one workspace = one host) with the drop-ins of the instances each host serves; the
// cluster's close() then ends it all. A file that needs more adds it to what this returns.
import { startCluster, type Cluster, type ClusterOptions, type Instance } from '../../src/sandbox/cluster.js';
import { clearTasks } from './tasks.js';
import { Workspace } from './workspace.js';

/** Sections of an agent config (spiderbackup.ini) on top of the workspace defaults. */
export type AgentConfig = Record<string, Record<string, string>>;

/** An instance, or its name in the cluster: master<i>, slave<i> (the replica of master<i>), spider<k>, tdbctl0. */
export type InstanceRef = Instance | string;

export interface WorkspaceOptions {
  /** The instances this host serves: their drop-ins (dbbackup.<port>.ini) go into its conf.d. */
  serves?: readonly InstanceRef[];
  /** Settings of those drop-ins beyond the defaults: [Public] keys, or "Section.Key" (see Cluster.writeInstanceIni). */
  ini?: Record<string, string>;
  /** Agent config of this host, section by section on top of the set-up's `config`. */
  config?: AgentConfig;
}

export interface SetUpOptions<W extends string = never> extends ClusterOptions {
  /** SET GLOBAL binlog_format on every master (ROW: an UPDATE replicates as a whole row image). */
  binlogFormat?: 'ROW' | 'STATEMENT' | 'MIXED';
  /** Agent config every workspace of this cluster starts from. */
  config?: AgentConfig;
  /** The hosts to create once the cluster runs, by name (TestCluster.workspaces). */
  workspaces?: Record<W, WorkspaceOptions>;
}

/** A workspace that is one host of a test cluster: it knows the drop-ins in its conf.d. */
export class ClusterWorkspace extends Workspace {
  private readonly dropIns = new Map<Instance, string>();

  constructor(
    readonly cluster: Cluster,
    config: AgentConfig = {},
  ) {
    super(config);
  }

  /** Writes the drop-ins of `instances` into conf.d: this host's agent serves them from now on. */
  serve(instances: readonly InstanceRef[], ini: Record<string, string> = {}): this {
    for (const ref of instances) {
      const inst = instanceOf(this.cluster, ref);
      this.dropIns.set(inst, this.cluster.writeInstanceIni(this.confDir, inst, ini));
    }
    return this;
  }

  serves(inst: Instance): boolean {
    return this.dropIns.has(inst);
  }

  /** The path of the drop-in of an instance this host serves (for `-c`). */
  dropIn(inst: Instance): string {
    const path = this.dropIns.get(inst);
    if (path === undefined) throw new Error(`this workspace does not serve ${inst.name}`);
    return path;
  }

  /** Writes an ini of `inst` beside conf.d, where the agent does not look, and returns its path (for `-c`). */
  iniFile(inst: Instance, ini: Record<string, string> = {}): string {
    return this.cluster.writeInstanceIni(this.dir, inst, ini);
  }
}

export interface TestCluster<W extends string = never> extends Cluster {
  /** The workspaces of SetUpOptions.workspaces, by name. */
  workspaces: Record<W, ClusterWorkspace>;
  /** A new host on this cluster; closed by close() unless the test closed it before. */
  workspace(opts?: WorkspaceOptions): ClusterWorkspace;
  /** The first workspace of this cluster serving `inst`. */
  workspaceOf(inst: Instance): ClusterWorkspace;
  /** Between tests: `workspaces` forget their runs, the tdbctl is primary again, the task table is empty. */
  reset(): Promise<void>;
  /** Kills everything of the cluster and removes its dir, then closes every workspace of it; safe to call repeatedly. */
  close(): Promise<void>;
}

export async function setUpCluster<W extends string = never>(opts: SetUpOptions<W> = {}): Promise<TestCluster<W>> {
  const { binlogFormat, config = {}, workspaces, ...clusterOptions } = opts;
  const cluster = await startCluster(clusterOptions);
  const closeCluster = cluster.close.bind(cluster);
  const all: ClusterWorkspace[] = [];
  let closing: Promise<void> | undefined;
  const test: TestCluster<W> = Object.assign(cluster, {
    workspaces: {} as Record<W, ClusterWorkspace>,
    workspace(o: WorkspaceOptions = {}) {
      const w = new ClusterWorkspace(cluster, mergeConfig(config, o.config ?? {}));
      all.push(w);
      return w.serve(o.serves ?? [], o.ini);
    },
    workspaceOf(inst: Instance) {
      const w = all.find((x) => x.serves(inst));
      if (!w) throw new Error(`no workspace serves ${inst.name}`);
      return w;
    },
    async reset() {
      for (const w of Object.values<ClusterWorkspace>(test.workspaces)) w.reset();
      cluster.tdbctl?.setPrimary(true);
      await clearTasks(cluster);
    },
    close() {
      closing ??= (async () => {
        try {
          await closeCluster();
        } finally {
          for (const w of all) w.close();
        }
      })();
      return closing;
    },
  });
  try {
    if (binlogFormat) for (const m of cluster.masters) await cluster.exec(m, `SET GLOBAL binlog_format = '${binlogFormat}'`);
    for (const [name, o] of Object.entries<WorkspaceOptions>(workspaces ?? ({} as Record<W, WorkspaceOptions>))) {
      test.workspaces[name as W] = test.workspace(o);
    }
  } catch (err) {
    await test.close();
    throw err;
  }
  return test;
}

/** Instances in port order: the order in which one host backs its instances up (ports are random). */
export function byPort<T extends Instance>(instances: readonly T[]): T[] {
  return [...instances].sort((a, b) => a.port - b.port);
}

function instanceOf(cluster: Cluster, ref: InstanceRef): Instance {
  if (typeof ref !== 'string') return ref;
  const inst = cluster.all().find((i) => i.name === ref);
  if (!inst)
    throw new Error(
      `no instance named ${ref} in this cluster (${cluster
        .all()
        .map((i) => i.name)
        .join(', ')})`,
    );
  return inst;
}

function mergeConfig(base: AgentConfig, own: AgentConfig): AgentConfig {
  const merged: AgentConfig = { ...base };
  for (const [section, kv] of Object.entries(own)) merged[section] = { ...base[section], ...kv };
  return merged;
}
