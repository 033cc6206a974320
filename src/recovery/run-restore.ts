// `spiderbackup restore` and the drill (issue 20): plans a whole-cluster restore, checks it, writes
// the tasks the targets' agents carry out, follows them and reports. The plan is restore-plan's
// (the cluster's when it answers, else the repository's alone); the replay comes from the binlog
// archive only, since the targets' agents cannot reach the source. Shard tasks first (at most
// `parallel` shards at a time), the spider nodes' tasks only once every shard task is done, so a
// new spider node never routes to a half-restored cluster; then tdbctl learns the new servers.
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { readShardArchive } from '../archive/archive-store.js';
import { openClusterSession } from '../cluster/session.js';
import type { AgentConfig } from '../config/agent.js';
import { withConnection } from '../db/connect.js';
import { unreachableOf } from '../db/reachability.js';
import { ConfigError, errorMessage, isUserFacing } from '../errors.js';
import { formatDuration } from '../format.js';
import { closeRepository, openAgentRepository } from '../repo/agent-repository.js';
import type { Repository } from '../repo/repository.js';
import { describeGap, splitReplay } from '../restore/archive-plan.js';
import { restorePlan, type PlanRequest, type PlanResult, type ShardPlan } from '../restore/plan.js';
import { readRepoManifest, repoBackups } from '../restore/repo-files.js';
import { restorePlanFromRepository } from '../restore/repo-plan.js';
import { flushRouting, replaceServer, routingStatements } from '../sql/restore-target.js';
import { checkSources, checkTargets, overlappingRestores, type SourceToCheck, type TargetToCheck } from './checks.js';
import {
  describeTarget,
  document,
  openKey,
  readDocument,
  RESTORE_FORMAT,
  RESTORE_PHASES,
  recordKey,
  restoreKey,
  resultKey,
  stateKey,
  taskKey,
  taskProgress,
  validRestoreId,
  type Address,
  type RestoreEvent,
  type RestoreOutcome,
  type RestorePhase,
  type RestoreRecord,
  type RestoreRequest,
  type RestoreResult,
  type RestoreTaskSpec,
  type RestoreTaskState,
} from './job.js';
import {
  planLine,
  routeRows,
  routesOf,
  shardMismatch,
  shardTasks,
  spiderTasks,
  type ShardSource,
  type SpiderSource,
} from './plan-tasks.js';
import { readPasswordFile, readTargetFile, targetInstances, type TargetFile, type TargetInstance } from './target-file.js';

const POLL_MS = 1_000;
/** How often the wait for the archive says where it is. */
const ARCHIVE_NOTE_MS = 10_000;

type Emit = (e: RestoreEvent) => void;

export async function runRestore(
  config: AgentConfig,
  req: RestoreRequest,
  onEvent: (e: RestoreEvent) => void = () => {},
  signal?: AbortSignal,
): Promise<RestoreOutcome> {
  const dryRun = req.dryRun === true;
  if (!config.repository)
    return refused(dryRun, [
      `${config.file ?? 'the agent config (defaults)'}: no [repository] section: a restore reads the backups and the binlog archive ` +
        "from the repository, and the targets' agents take their tasks from there",
    ]);
  let target: TargetFile;
  try {
    target = readTargetFile(req.targetFile);
  } catch (err) {
    if (err instanceof ConfigError) return refused(dryRun, [err.message]);
    throw err;
  }
  if (req.requireScratch && !target.scratch)
    return refused(dryRun, [`${target.file}: scratch = false: the drill restores only onto scratch instances (say "scratch": true)`]);
  const repo = await openAgentRepository(config);
  try {
    if (req.resumeId !== undefined) return await resume(config, repo, target, req, onEvent, signal);
    return await fresh(config, repo, target, req, onEvent, signal);
  } finally {
    closeRepository(repo);
  }
}

const refused = (dryRun: boolean, problems: string[], plan: string[] = []): RestoreOutcome => ({ dryRun, problems, plan });

// ---------------------------------------------------------------- plan and checks

/** restore-plan's choice: the cluster's plan when the source answers, else the repository's alone. */
async function makePlan(config: AgentConfig, repo: Repository, req: PlanRequest): Promise<PlanResult> {
  let session;
  try {
    session = openClusterSession(config, undefined);
  } catch (err) {
    if (!isUserFacing(err)) throw err;
    return restorePlanFromRepository(repo, req, `no source spider node is configured on this host (${errorMessage(err)})`);
  }
  try {
    return await restorePlan(config, session, req);
  } catch (err) {
    if (unreachableOf(err)?.kind !== 'unreachable') throw err;
    return restorePlanFromRepository(repo, req, `the cluster cannot be reached (${errorMessage(err)})`);
  } finally {
    await session.close();
  }
}

const shardLabel = (p: ShardPlan) => `shard ${p.shard.shardValue} (${p.shard.serverName} ${p.shard.host}:${p.shard.port})`;

/** What stops a shard's backup from being restored by the agents, one line each (the binlogs: archiveCover). */
function shardProblems(p: ShardPlan): string[] {
  const who = shardLabel(p);
  if (p.problem) return [`${who}: ${p.problem}`];
  const out: string[] = [];
  if (p.noManifest) out.push(`${who}: its backup has no published manifest (only a built-in runner's backup can be restored)`);
  if (p.repoProblem) out.push(`${who}: ${p.repoProblem}`);
  if (p.start?.problem) out.push(`${who}: ${p.start.problem}`);
  if (p.published && p.published.verdict !== 'ok')
    out.push(`${who}: the agent's own check of its backup said ${p.published.verdict}: ${p.published.verdictDetail}`);
  if (out.length === 0 && (!p.published || !p.backup || p.backupGtid === undefined)) out.push(`${who}: the backup's position is unknown`);
  return out;
}

/** The archive's runs from the backup's position to the point, or what it lacks. */
async function archiveCover(repo: Repository, p: ShardPlan): Promise<{ runs: ShardSource['runs'] } | { missing: string }> {
  const view = await readShardArchive(repo, p.shard.shardValue);
  const split = splitReplay(view.files, p.backupGtid as string, p.shard.gtid);
  if (split.restFrom === undefined) return { runs: split.runs };
  const why = split.gap ? describeGap(split.gap) : 'the archive holds nothing of this shard';
  return {
    missing: `${shardLabel(p)}: the binlog archive lacks the events after ${split.restFrom || '(start)'} up to the point's ${p.shard.gtid} (${why}); the restore replays from the archive only`,
  };
}

/** Waits (bounded: 2 × [archive] max_lag) for the archiver to cover every shard's point; a dry run only looks. */
async function waitForArchive(
  config: AgentConfig,
  repo: Repository,
  shards: ShardPlan[],
  dryRun: boolean,
  emit: Emit,
  signal: AbortSignal | undefined,
): Promise<{ runs: Map<ShardPlan, ShardSource['runs']>; problems: string[] }> {
  const runs = new Map<ShardPlan, ShardSource['runs']>();
  const limitMs = 2 * config.archive.maxLagMs;
  const t0 = Date.now();
  let noted = 0;
  let todo = shards;
  for (;;) {
    const missing: { p: ShardPlan; line: string }[] = [];
    for (const p of todo) {
      const c = await archiveCover(repo, p);
      if ('runs' in c) runs.set(p, c.runs);
      else missing.push({ p, line: c.missing });
    }
    const waited = Date.now() - t0;
    if (missing.length === 0 || dryRun || waited >= limitMs || signal?.aborted)
      return {
        runs,
        problems: missing.map((m) =>
          dryRun
            ? `${m.line} (a restore would wait up to ${formatDuration(limitMs)} for the archiver)`
            : `${m.line}; waited ${formatDuration(waited)}`,
        ),
      };
    if (noted === 0 || Date.now() - noted >= ARCHIVE_NOTE_MS) {
      noted = Date.now();
      emit({
        kind: 'note',
        line: `waiting for the binlog archive to reach the point on shard(s) ${missing.map((m) => m.p.shard.shardValue).join(', ')} (${formatDuration(waited)} of at most ${formatDuration(limitMs)}, 2 × [archive] max_lag)`,
      });
    }
    todo = missing.map((m) => m.p);
    await sleep(Math.min(2_000, limitMs - waited), undefined, { signal }).catch(() => undefined);
  }
}

/** The source spider node's backup of the same backup id (its Spider table definitions). */
async function spiderSourceOf(repo: Repository, backupId: string): Promise<SpiderSource | string> {
  const backup = (await repoBackups(repo)).find((b) => b.backupId === backupId);
  const inst = backup?.instances
    .filter((i) => i.manifest?.role.startsWith('spider'))
    .sort((a, b) => a.host.localeCompare(b.host) || a.port - b.port)[0];
  if (!inst?.manifest)
    return `backup ${backupId} holds no spider node's backup in the repository (${repo.where}): the new spider nodes cannot get the Spider table definitions`;
  const m = await readRepoManifest(repo, backupId, inst.host, inst.port);
  if (!m) return `backup ${backupId}: the spider node ${inst.host}:${inst.port}'s manifest is gone from the repository`;
  return {
    source: {
      host: inst.host,
      port: inst.port,
      backupId,
      serverName: 'SPIDER',
      tool: m.manifest.tool.name,
      manifestSha256: m.sha256,
    },
    bytes: m.manifest.bytes,
  };
}

function tdbctlLines(target: TargetFile): string[] {
  const routes = routesOf(target);
  const byName = new Map(routes.map((r) => [r.name, r.passwordFile]));
  const statements = routingStatements(routeRows(routes), (r) => byName.get(r.name) ?? '?');
  const head = target.tdbctl
    ? `tdbctl ${describeTarget(target.tdbctl)}: once every spider node is routed, the command runs there:`
    : "tdbctl: no tdbctl in the target file; once every spider node is routed, run on the new cluster's tdbctl node (TenDB Cluster route management):";
  return [head, ...statements.map((s) => `  ${s}`)];
}

async function fresh(
  config: AgentConfig,
  repo: Repository,
  target: TargetFile,
  req: RestoreRequest,
  emit: Emit,
  signal: AbortSignal | undefined,
): Promise<RestoreOutcome> {
  const dryRun = req.dryRun === true;
  const plan = await makePlan(config, repo, { backupId: req.backupId, pointName: req.pointName, toTime: req.toTime, repo });
  const problems = [...plan.problems];
  const point = plan.point;
  if (!point) return refused(dryRun, problems.length > 0 ? problems : ['no restore point to restore to']);
  if (plan.fromRepository !== undefined) emit({ kind: 'note', line: `${plan.fromRepository}: the plan was read from the repository` });
  problems.push(
    ...shardMismatch(
      target,
      plan.shards.map((p) => p.shard),
    ),
  );
  const usable: ShardPlan[] = [];
  for (const p of plan.shards) {
    const bad = shardProblems(p);
    problems.push(...bad);
    if (bad.length === 0) usable.push(p);
  }
  const archive = await waitForArchive(config, repo, usable, dryRun, emit, signal);
  problems.push(...archive.problems);
  const spider = plan.backupId ? await spiderSourceOf(repo, plan.backupId) : 'no backup chosen';
  if (typeof spider === 'string') problems.push(spider);

  // Never onto the source: its instances are named by the plan.
  const sources = new Map<string, string>(plan.shards.map((p) => [`${p.shard.host}:${p.shard.port}`, p.shard.serverName]));
  for (const p of plan.shards) if (p.backup) sources.set(`${p.backup.host}:${p.backup.port}`, p.backup.serverName);
  if (typeof spider !== 'string') sources.set(describeTarget(spider.source), 'spider node');
  for (const t of targetInstances(target)) {
    const src = sources.get(describeTarget(t));
    if (src !== undefined)
      problems.push(`${target.file}: ${describeTarget(t)} is the source's ${src}: a restore never writes onto the source`);
  }

  const shardSources: ShardSource[] = usable.flatMap((p) => {
    const runs = archive.runs.get(p);
    const b = p.backup;
    const pub = p.published;
    if (!runs || !b || !pub) return [];
    return [
      {
        shardValue: p.shard.shardValue,
        serverName: p.shard.serverName,
        source: {
          host: b.host,
          port: b.port,
          backupId: b.backupId,
          serverName: b.serverName,
          tool: pub.tool,
          manifestSha256: pub.manifestSha256,
        },
        bytes: pub.bytes,
        fromGtid: p.backupGtid as string,
        toGtid: p.shard.gtid,
        runs,
      },
    ];
  });
  const placeholder = 'r-(id)';
  const shardSpecs = shardTasks(placeholder, target, shardSources);
  const spiderSpecs = typeof spider === 'string' ? [] : spiderTasks(placeholder, target, spider);
  const bytesOf = (t: RestoreTaskSpec) =>
    t.role === 'spider' ? (spider as SpiderSource).bytes : shardSources.find((s) => s.shardValue === t.shard)?.bytes;
  const lines = [
    `backup ${plan.backupId} to restore point ${point.name} (${point.takenAt})${plan.backupChosen ? ' (the newest backup usable for it)' : ''}:`,
    ...[...shardSpecs, ...spiderSpecs].map((t) => planLine(t, bytesOf(t))),
    ...tdbctlLines(target),
  ];

  const checks: SourceToCheck[] = [
    ...shardSources.map((s) => ({
      label: `shard ${s.shardValue}'s backup (${s.source.serverName} ${s.source.host}:${s.source.port})`,
      source: s.source,
    })),
    ...(typeof spider === 'string'
      ? []
      : [{ label: `the spider node's backup (${describeTarget(spider.source)})`, source: spider.source }]),
  ];
  const objects = await checkSources(repo, checks);
  const toCheck: TargetToCheck[] = [
    ...target.shards.flatMap((s) => {
      const bytes = shardSources.find((x) => x.shardValue === s.shardValue)?.bytes ?? 0;
      return [
        { inst: s.master, what: `master of shard ${s.shardValue}`, empty: true, bytes },
        ...s.replicas.map((r) => ({ inst: r, what: `replica of shard ${s.shardValue}`, empty: true, bytes })),
      ];
    }),
    ...target.spider.map((s, k) => ({
      inst: s,
      what: `spider node SPIDER${k}`,
      empty: true,
      bytes: typeof spider === 'string' ? 0 : spider.bytes,
    })),
  ];
  const targets = await checkTargets(toCheck, target.file, target.scratch, connectOptions(config));
  const addresses = targetInstances(target).map(address);
  problems.push(...objects.problems, ...targets.problems, ...(await overlappingRestores(repo, addresses)));
  lines.push(...objects.notes.map((n) => `note: ${n}`), ...targets.notes.map((n) => `note: ${n}`));
  if (dryRun || problems.length > 0) return refused(dryRun, problems, lines);

  const restoreId = await newRestoreId(repo);
  const record: RestoreRecord = {
    format: RESTORE_FORMAT,
    restoreId,
    createdAt: new Date().toISOString(),
    createdBy: hostname(),
    backupId: plan.backupId,
    point: { name: point.name, takenAt: point.takenAt },
    ...(plan.requestedTime !== undefined ? { requestedTime: plan.requestedTime } : {}),
    targets: addresses,
    ...(target.tdbctl ? { tdbctl: address(target.tdbctl) } : {}),
  };
  await repo.store.putObject(recordKey(repo, restoreId), document(record));
  const specs = shardTasks(restoreId, target, shardSources);
  emit({ kind: 'planned', restoreId, backupId: plan.backupId, point: point.name, tasks: specs.length + spiderSpecs.length });
  const groups = target.shards.map((s) => ({ shard: s.shardValue, tasks: specs.filter((t) => t.shard === s.shardValue), done: [] }));
  return carryOut({
    config,
    repo,
    target,
    restoreId,
    groups,
    spiders: () => spiderTasks(restoreId, target, spider as SpiderSource),
    parallel: req.parallel,
    emit,
    signal,
    plan: lines.map((l) => l.replaceAll(placeholder, restoreId)),
  });
}

const address = (a: Address): Address => ({ host: a.host, port: a.port });

const connectOptions = (config: AgentConfig) => ({ connectTimeoutMs: 10_000, queryTimeoutMs: config.schedule.statementTimeoutMs });

/** `r-YYYYMMDD-HHMMSS` (UTC), the next second when one of that name exists. */
async function newRestoreId(repo: Repository): Promise<string> {
  for (let i = 0; ; i++) {
    const t = new Date(Date.now() + i * 1000).toISOString();
    const id = `r-${t.slice(0, 10).replaceAll('-', '')}-${t.slice(11, 19).replaceAll(':', '')}`;
    if (i >= 60 || (await repo.store.stat(recordKey(repo, id))) === undefined) return id;
  }
}

// ---------------------------------------------------------------- resume

async function resume(
  config: AgentConfig,
  repo: Repository,
  target: TargetFile,
  req: RestoreRequest,
  emit: Emit,
  signal: AbortSignal | undefined,
): Promise<RestoreOutcome> {
  const dryRun = req.dryRun === true;
  const id = req.resumeId as string;
  if (!validRestoreId(id)) return refused(dryRun, [`--resume ${JSON.stringify(id)}: not a restore id (r-YYYYMMDD-HHMMSS)`]);
  const record = await readDocument<RestoreRecord>(repo, recordKey(repo, id));
  if (!record)
    return refused(dryRun, [`--resume ${id}: no such restore in the repository (${repo.where}: ${recordKey(repo, id)} missing)`]);
  const result = await readDocument<RestoreResult>(repo, resultKey(repo, id));
  if (result?.outcome === 'done')
    return refused(dryRun, [`--resume ${id}: that restore is done and routed (${result.endedAt}); nothing to resume`]);
  const base = `${restoreKey(repo, id)}tasks/`;
  const specs: RestoreTaskSpec[] = [];
  for (const o of await repo.store.list(base)) {
    const spec = await readDocument<RestoreTaskSpec>(repo, o.key);
    if (spec) specs.push(spec);
  }
  const states = new Map<RestoreTaskSpec, RestoreTaskState | undefined>();
  for (const s of specs) states.set(s, await readDocument<RestoreTaskState>(repo, stateKey(repo, id, s.target)));
  const isDone = (s: RestoreTaskSpec) => {
    const st = states.get(s);
    return st !== undefined && st.attempt >= s.attempt && st.phase === 'done';
  };
  const problems: string[] = [];
  const inFile = new Set(targetInstances(target).map(describeTarget));
  for (const s of specs)
    if (!inFile.has(describeTarget(s.target)))
      problems.push(
        `${target.file}: ${describeTarget(s.target)} (${s.role} of restore ${id}) is not in this target file: give the restore's own target file`,
      );
  const spider = await spiderSourceOf(repo, record.backupId);
  if (typeof spider === 'string') problems.push(spider);
  const redo = specs.filter((s) => s.role !== 'spider' && !isDone(s));
  const loginOf = new Map(targetInstances(target).map((t) => [describeTarget(t), t]));
  const toCheck: TargetToCheck[] = redo.flatMap((s) => {
    const inst = loginOf.get(describeTarget(s.target));
    return inst ? [{ inst, what: `${s.role} of shard ${s.shard}`, empty: false, bytes: 0 }] : [];
  });
  const checked = await checkTargets(toCheck, target.file, target.scratch, connectOptions(config));
  problems.push(...checked.problems, ...(await overlappingRestores(repo, record.targets, id)));
  const lines = [
    `restore ${id} (backup ${record.backupId} to restore point ${record.point.name}): ${specs.filter(isDone).length} task(s) done and kept, ${redo.length} shard task(s) to redo`,
    ...redo.map((s) => `redo ${planLine({ ...s, attempt: s.attempt + 1 }, undefined)}`),
    ...tdbctlLines(target),
    ...checked.notes.map((n) => `note: ${n}`),
  ];
  if (dryRun || problems.length > 0) return refused(dryRun, problems, lines);

  emit({ kind: 'planned', restoreId: id, backupId: record.backupId, point: record.point.name, tasks: specs.length });
  const shards = [...new Set(specs.filter((s) => s.role !== 'spider').map((s) => s.shard))].sort((a, b) => a - b);
  const groups = shards.map((shard) => {
    const of = specs.filter((s) => s.role !== 'spider' && s.shard === shard);
    return {
      shard,
      tasks: of.filter((s) => !isDone(s)).map((s) => ({ ...s, attempt: s.attempt + 1 })),
      done: of.filter(isDone).map((s) => ({ spec: s, state: states.get(s) as RestoreTaskState })),
    };
  });
  const oldSpiders = specs.filter((s) => s.role === 'spider');
  return carryOut({
    config,
    repo,
    target,
    restoreId: id,
    groups,
    spiders: () => {
      const fresh = spiderTasks(id, target, spider as SpiderSource);
      return fresh.map((t) => {
        const old = oldSpiders.find((o) => describeTarget(o.target) === describeTarget(t.target));
        return old ? { ...t, attempt: old.attempt + 1 } : t;
      });
    },
    parallel: req.parallel,
    emit,
    signal,
    plan: lines,
  });
}

// ---------------------------------------------------------------- carrying it out

interface Group {
  shard: number;
  /** Tasks to write (new, or again with attempt + 1). */
  tasks: RestoreTaskSpec[];
  /** Tasks of an earlier attempt already done, kept as they are (--resume). */
  done: { spec: RestoreTaskSpec; state: RestoreTaskState }[];
}

interface Tracked {
  spec: RestoreTaskSpec;
  writtenAt: number;
  /** When it was written, or its state's heartbeat last changed (this command's clock). */
  since: number;
  heartbeat?: string;
  phase?: RestorePhase;
  state?: RestoreTaskState;
  end?: { kind: 'done' } | { kind: 'failed'; error: string };
}

interface Run {
  config: AgentConfig;
  repo: Repository;
  target: TargetFile;
  restoreId: string;
  groups: Group[];
  spiders: () => RestoreTaskSpec[];
  parallel: number | undefined;
  emit: Emit;
  signal: AbortSignal | undefined;
  plan: string[];
}

async function carryOut(run: Run): Promise<RestoreOutcome> {
  const { repo, restoreId, emit, signal } = run;
  const t0 = Date.now();
  const claimMs = run.config.restore.claimTimeoutMs;
  const parallel = Math.max(1, run.parallel ?? run.groups.length);
  const tracked: Tracked[] = [];
  const kept = run.groups.flatMap((g) =>
    g.done.map((d) => ({ spec: d.spec, writtenAt: t0, since: t0, state: d.state, end: { kind: 'done' as const } })),
  );
  const write = async (specs: readonly RestoreTaskSpec[]) => {
    for (const spec of specs) {
      await repo.store.putObject(taskKey(repo, restoreId, spec.target), document(spec));
      const now = Date.now();
      tracked.push({ spec, writtenAt: now, since: now });
    }
  };
  const waiting = run.groups.filter((g) => g.tasks.length > 0);
  const active = new Set<Group>();
  const finished = (g: Group) => tracked.filter((t) => t.spec.shard === g.shard && t.spec.role !== 'spider').every((t) => t.end);
  const fill = async () => {
    for (const g of active) if (finished(g)) active.delete(g);
    while (active.size < parallel && waiting.length > 0) {
      const g = waiting.shift() as Group;
      active.add(g);
      await write(g.tasks);
    }
  };
  // Kept from an earlier attempt (--resume): said once, with the GTID each reached.
  for (const k of kept)
    emit({
      kind: 'phase',
      target: address(k.spec.target),
      role: k.spec.role,
      shard: k.spec.shard,
      phase: 'done',
      bytes: bytesSoFar(k.state),
      ms: 0,
      ...(k.state.gtid ? { gtid: k.state.gtid } : {}),
    });
  await fill();
  await repo.store.putObject(openKey(repo, restoreId), document({ restoreId, openedAt: new Date().toISOString() }));

  const follow = async (): Promise<boolean> => {
    for (;;) {
      for (const t of tracked) if (!t.end) await poll(run, t, claimMs);
      await fill();
      if (tracked.every((t) => t.end) && waiting.length === 0) return true;
      if (signal?.aborted) return false;
      await sleep(POLL_MS, undefined, { signal }).catch(() => undefined);
    }
  };
  if (!(await follow())) return interrupted(run);
  const shardTracked = [...kept, ...tracked];
  const shardsDone = shardTracked.every((t) => t.end?.kind === 'done');
  let routed = false;
  const problems: string[] = [];
  if (shardsDone) {
    const spiderSpecs = run.spiders();
    await write(spiderSpecs);
    if (!(await follow())) return interrupted(run);
    routed = tracked.filter((t) => t.spec.role === 'spider').every((t) => t.end?.kind === 'done');
    if (routed) {
      emit({ kind: 'routed', spiders: spiderSpecs.map((s) => s.target) });
      if (run.target.tdbctl) problems.push(...(await teachTdbctl(run)));
    }
  }
  const all = [...kept, ...tracked];
  const failed = all.flatMap((t) => (t.end?.kind === 'failed' ? [{ target: address(t.spec.target), error: t.end.error }] : []));
  for (const f of failed) {
    const t = all.find((x) => describeTarget(x.spec.target) === describeTarget(f.target)) as Tracked;
    problems.push(`${t.spec.role} ${describeTarget(f.target)}${t.spec.role === 'spider' ? '' : ` (shard ${t.spec.shard})`}: ${f.error}`);
  }
  if (!shardsDone)
    problems.push(
      'not routed: the spider nodes are restored only once every shard reached the point; fix the failed shard(s), then --resume ' +
        restoreId,
    );
  const anyDone = all.some((t) => t.spec.role !== 'spider' && t.end?.kind === 'done');
  const result: RestoreResult = {
    format: RESTORE_FORMAT,
    restoreId,
    outcome: routed ? 'done' : anyDone ? 'partial' : 'failed',
    endedAt: new Date().toISOString(),
    totalMs: Date.now() - t0,
    phaseMs: phaseTimes(
      all.flatMap((t) => (t.state ? [t.state] : [])),
      Date.now(),
    ),
    failed,
    routed,
  };
  await repo.store.putObject(resultKey(repo, restoreId), document(result));
  await repo.store.remove([openKey(repo, restoreId)]);
  return { restoreId, dryRun: false, problems, plan: run.plan, result };
}

function interrupted(run: Run): RestoreOutcome {
  return {
    restoreId: run.restoreId,
    dryRun: false,
    problems: [
      `interrupted: restore ${run.restoreId} stays open (its tasks may still run on the agents); follow it again with --resume ${run.restoreId}`,
    ],
    plan: run.plan,
  };
}

/** Reads one task's state and says what changed (a phase event per change). */
async function poll(run: Run, t: Tracked, claimMs: number): Promise<void> {
  let state: RestoreTaskState | undefined;
  try {
    state = await readDocument<RestoreTaskState>(run.repo, stateKey(run.repo, run.restoreId, t.spec.target));
  } catch {
    state = undefined; // a state being replaced; the next poll reads it
  }
  const now = Date.now();
  const current = state && state.attempt >= t.spec.attempt ? state : undefined;
  if (current && current.heartbeatAt !== t.heartbeat) {
    t.heartbeat = current.heartbeatAt;
    t.since = now;
  }
  if (current) t.state = current;
  const progress = taskProgress(t.spec, state, t.since, now, claimMs);
  const event = (phase: RestorePhase, extra: { error?: string; gtid?: string } = {}) =>
    run.emit({
      kind: 'phase',
      target: address(t.spec.target),
      role: t.spec.role,
      shard: t.spec.shard,
      phase,
      bytes: current ? bytesSoFar(current) : 0,
      ms: now - t.writtenAt,
      ...extra,
    });
  if (progress.kind === 'failed') {
    t.end = { kind: 'failed', error: progress.error };
    t.phase = 'failed';
    event('failed', { error: progress.error });
    return;
  }
  if (current && current.phase !== t.phase) {
    t.phase = current.phase;
    event(current.phase, current.phase === 'done' && current.gtid ? { gtid: current.gtid } : {});
  }
  if (progress.kind === 'done') t.end = { kind: 'done' };
}

/** What the task moved so far: the bytes of its ended phases and of the current one. */
const bytesSoFar = (s: RestoreTaskState): number =>
  s.phases.reduce((n, p) => n + (p.endedAt !== undefined ? (p.bytes ?? 0) : 0), 0) + s.bytes;

/** Time per phase summed over the tasks (a running phase up to now). */
export function phaseTimes(states: readonly RestoreTaskState[], nowMs: number): Partial<Record<RestorePhase, number>> {
  const out: Partial<Record<RestorePhase, number>> = {};
  for (const s of states)
    for (const p of s.phases) {
      if (!RESTORE_PHASES.includes(p.phase) || p.phase === 'done' || p.phase === 'failed') continue;
      const start = Date.parse(p.startedAt);
      const end = p.endedAt !== undefined ? Date.parse(p.endedAt) : nowMs;
      if (Number.isFinite(start) && Number.isFinite(end) && end >= start) out[p.phase] = (out[p.phase] ?? 0) + (end - start);
    }
  return out;
}

/** The target tdbctl learns the new servers (its login from the target file); problems, one line each. */
async function teachTdbctl(run: Run): Promise<string[]> {
  const tdbctl = run.target.tdbctl as TargetInstance;
  const routes = routesOf(run.target);
  try {
    const password = readPasswordFile(tdbctl.passwordFile);
    await withConnection(
      { host: tdbctl.host, port: tdbctl.port, user: tdbctl.user, password },
      async (c) => {
        for (const r of routes)
          await replaceServer(c, routeRows([r])[0] as ReturnType<typeof routeRows>[number], readPasswordFile(r.passwordFile));
        await flushRouting(c);
      },
      connectOptions(run.config),
    );
    run.emit({ kind: 'note', line: `tdbctl ${describeTarget(tdbctl)}: ${routes.length} route(s) written, TDBCTL FLUSH ROUTING done` });
    return [];
  } catch (err) {
    return [
      `tdbctl ${describeTarget(tdbctl)} (${run.target.file}): the routes could not be written: ${errorMessage(err)}; run the statements of the plan there`,
    ];
  }
}
