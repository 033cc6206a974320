// One restore task carried out on its target instance (issue 20, README "Restoring a cluster — what
// the agent does"): the empty check, the fetch of the source's backup from the repository, the
// load (logical into the running instance, physical into its datadir), the source's rows dropped
// and the GTID state set, the replay of the archived binlogs to the point, then a replica's link to
// its new master or a spider node's routes. Returns the GTID position the instance reached.
import { mkdirSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentConfig } from '../config/agent.js';
import type { InstanceConfig } from '../config/instance.js';
import { connect, type Connection } from '../db/connect.js';
import { OperationError } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import { resolveUnder } from '../runner/paths.js';
import { covers, parseGtidPos } from '../archive/gtid.js';
import { checkRepoInstance, fetchInstance } from '../restore/repo-files.js';
import { flushBinaryLogs, flushPrivileges, gtidBinlogPos, gtidSlavePos } from '../sql/recovery.js';
import { dropSourceRows, startGtidState } from './after-load.js';
import { ensureEmpty } from './empty-target.js';
import { describeTarget, instanceName, type RestorePhase, type RestoreTaskSpec } from './job.js';
import { loadDump } from './logical-load.js';
import { captureLogin, recreateLogin } from './login.js';
import { physicalRefusal, restorePhysical } from './physical-load.js';
import { linkToMaster, waitForMaster } from './replica-link.js';
import { replayRuns } from './replay.js';
import { proveRoutes, writeRoutes } from './spider-routes.js';

export class RestoreTaskError extends OperationError {
  override readonly name = 'RestoreTaskError';
}

export interface RestoreContext {
  config: AgentConfig;
  /** The drop-in of the target instance (its login is the agent's). */
  instance: InstanceConfig;
  repo: Repository;
  /** Where the backup is fetched and prepared ([restore] staging_dir). */
  stagingDir: string;
  signal: AbortSignal;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** How long a replica waits for its new master's task (default replica-link.ts MASTER_WAIT_MS). */
  masterWaitMs?: number;
  /**
   * An earlier attempt of this very task got past the empty check: what the target holds is its
   * own half-done restore, wiped like a scratch target's.
   */
  redo?: boolean;
  /** Called before a replica waits for its new master: the host lock goes (its master may need it). */
  beforeWait?: () => void;
}

export interface RestoreReport {
  phase(p: RestorePhase): void;
  /** Bytes of the current phase so far. */
  bytes(n: number): void;
}

const TOOLS = ['mariadb-dump', 'mariadb-backup'];

export async function restoreInstance(spec: RestoreTaskSpec, ctx: RestoreContext, report: RestoreReport): Promise<{ gtid: string }> {
  const { instance, repo, signal } = ctx;
  const who = describeTarget(spec.target);
  if (instance.host !== spec.target.host || instance.port !== spec.target.port)
    throw new RestoreTaskError(`the drop-in ${instance.file} serves ${instance.host}:${instance.port}, not ${who}`);
  if (!TOOLS.includes(spec.source.tool))
    throw new RestoreTaskError(
      `the source's backup was made by ${JSON.stringify(spec.source.tool)}, not a tool this restore knows (${TOOLS.join(', ')})`,
    );
  if (spec.role === 'replica' && !spec.replicateFrom) throw new RestoreTaskError('a replica task without replicateFrom');
  if (spec.role === 'spider' && (spec.routes ?? []).length === 0) throw new RestoreTaskError('a spider node task without routes');
  const physical = spec.source.tool === 'mariadb-backup';
  if (physical) {
    const refusal = physicalRefusal(ctx.config);
    if (refusal) throw new RestoreTaskError(refusal);
  }
  const source = `${spec.source.serverName} ${describeTarget(spec.source)} backup ${spec.source.backupId}`;
  const staging = join(ctx.stagingDir, spec.restoreId, instanceName(spec.target));
  let db: Connection | undefined;
  try {
    db = await connect(instance, { connectTimeoutMs: 10_000 });
    await ensureEmpty(db, spec.scratch || ctx.redo === true, (m) => ctx.log(m));

    report.phase('fetch');
    const check = await checkRepoInstance(repo, spec.source.backupId, spec.source.host, spec.source.port, spec.source.manifestSha256);
    if (!check.ok || !check.manifest) throw new RestoreTaskError(`the ${source} cannot be used: ${check.problems.join('; ')}`);
    const manifest = check.manifest.manifest;
    rmSync(staging, { recursive: true, force: true });
    const fetched = join(staging, 'backup');
    mkdirSync(fetched, { recursive: true });
    await fetchInstance(repo, spec.source.backupId, spec.source.host, spec.source.port, manifest, fetched);
    report.bytes(manifest.files.reduce((n, f) => n + f.bytes, 0));
    ctx.log('backup fetched', { source, files: manifest.files.length });

    report.phase('load');
    const login = await captureLogin(db);
    const spider = spec.role === 'spider';
    if (physical) {
      await restorePhysical(db, {
        config: ctx.config,
        instance,
        manifest,
        fetched,
        staging,
        backupId: spec.source.backupId,
        login,
        spider,
        routes: spec.routes,
        signal,
        log: (m) => ctx.log(m),
        onBytes: (n) => report.bytes(n),
      });
      // Its server was stopped under it.
      db.destroy();
      db = await connect(instance, { connectTimeoutMs: 10_000 });
    } else {
      const file = manifest.files[0];
      if (!file) throw new RestoreTaskError(`the ${source}: its manifest lists no file`);
      if (spider) {
        // The dump's Spider tables name their servers: CREATE TABLE needs them in the server cache.
        await writeRoutes(db, spec.routes ?? []);
        await flushPrivileges(db);
      }
      await loadDump(instance, resolveUnder(fetched, file.name), { signal, onBytes: (n) => report.bytes(n) });
      // The dump wrote the source's mysql.servers into the table (the cache still holds the
      // routes): the routes again, before the grant tables and the server cache are read again.
      if (spider) await writeRoutes(db, spec.routes ?? []);
      await recreateLogin(db, login);
      await dropSourceRows(db, spec.target, spider);
    }
    if (spider) await flushPrivileges(db);
    rmSync(fetched, { recursive: true, force: true });
    ctx.log('backup loaded', { source, tool: spec.source.tool });

    if (!spider) {
      await startGtidState(db, spec.fromGtid);
      report.phase('replay');
      const r = await replayRuns(spec, repo, instance, db, join(staging, 'binlogs'), { signal, onBytes: (n) => report.bytes(n) });
      const reached = await gtidBinlogPos(db);
      if (spec.toGtid !== '' && !covers(parseGtidPos(reached), parseGtidPos(spec.toGtid)))
        throw new RestoreTaskError(`the replay stopped short: @@gtid_binlog_pos is ${reached || "''"}, the point is ${spec.toGtid}`);
      ctx.log('binlogs replayed', { runs: r.runs, bytes: r.bytes, carriedXa: r.carriedXa, skippedXa: r.skippedXa, gtid: reached });
    }

    if (spec.role === 'replica') {
      ctx.beforeWait?.();
      await waitForMaster(repo, spec, {
        signal,
        ...(ctx.masterWaitMs !== undefined ? { timeoutMs: ctx.masterWaitMs } : {}),
        onWait: (why) => ctx.log(`waiting: ${why}`),
      });
      await linkToMaster(db, spec, { signal });
      ctx.log('replicating from its new master', { master: describeTarget(spec.replicateFrom!) });
      return { gtid: await gtidSlavePos(db) };
    }
    if (spider) {
      report.phase('route');
      const parts = await proveRoutes(db);
      ctx.log('routes written and proven', { routes: spec.routes?.length ?? 0, spiderPartitions: parts });
      return { gtid: '' };
    }
    // The master's history after the point begins in a file of its own: its archive (when its agent
    // archives it) starts there, never with the replayed events, which the source's archive holds.
    await flushBinaryLogs(db);
    return { gtid: await gtidBinlogPos(db) };
  } finally {
    await db?.close().catch(() => undefined);
    rmSync(staging, { recursive: true, force: true });
    removeIfEmpty(join(ctx.stagingDir, spec.restoreId));
  }
}

function removeIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // gone already, or another task's staging is in it
  }
}
