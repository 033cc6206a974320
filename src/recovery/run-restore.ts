// `spiderbackup restore` and the drill (issue 20): plans a whole-cluster restore (source-plan.ts),
// checks it (checks.ts), writes its record and tasks and follows them (follow.ts), or resumes one.
// The replay comes from the binlog archive only, since the targets' agents cannot reach the source;
// the spider nodes' tasks are written only once every shard task is done, so a new spider node
// never routes to a half-restored cluster.
import { hostname } from 'node:os';
import type { AgentConfig } from '../config/agent.js';
import { ConfigError } from '../errors.js';
import { closeRepository, openAgentRepository } from '../repo/agent-repository.js';
import type { Repository } from '../repo/repository.js';
import type { ShardPlan } from '../restore/plan.js';
import { routingStatements } from '../sql/restore-target.js';
import { checkSources, checkTargets, overlappingRestores, type SourceToCheck, type TargetToCheck } from './checks.js';
import { address, carryOut, connectOptions } from './follow.js';
import {
  describeTarget,
  document,
  readDocument,
  RESTORE_FORMAT,
  recordKey,
  restoreKey,
  resultKey,
  stateKey,
  validRestoreId,
  type RestoreEvent,
  type RestoreOutcome,
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
import { makePlan, shardProblems, spiderSourceOf, waitForArchive } from './source-plan.js';
import { readTargetFile, targetInstances, type TargetFile } from './target-file.js';

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
