// Carrying out a whole-cluster restore once its tasks are planned (issue 20): the shard tasks
// written at most `parallel` shards at a time, their state objects followed about every second
// (taskProgress on this command's own clock, a phase event at each change), the spider nodes'
// tasks written only once every shard task is done, then tdbctl taught the new servers;
// result.json written and the open marker removed at the end. Interrupted, the restore stays open.
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentConfig } from '../config/agent.js';
import { withConnection } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import { flushRouting, replaceServer } from '../sql/restore-target.js';
import {
  describeTarget,
  document,
  openKey,
  readDocument,
  RESTORE_FORMAT,
  RESTORE_PHASES,
  resultKey,
  stateKey,
  taskKey,
  taskProgress,
  type Address,
  type RestoreEvent,
  type RestoreOutcome,
  type RestorePhase,
  type RestoreResult,
  type RestoreTaskSpec,
  type RestoreTaskState,
} from './job.js';
import { routeRows, routesOf } from './plan-tasks.js';
import { readPasswordFile, type TargetFile, type TargetInstance } from './target-file.js';

const POLL_MS = 1_000;

export const address = (a: Address): Address => ({ host: a.host, port: a.port });

export const connectOptions = (config: AgentConfig) => ({ connectTimeoutMs: 10_000, queryTimeoutMs: config.schedule.statementTimeoutMs });

export interface Group {
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

export interface Run {
  config: AgentConfig;
  repo: Repository;
  target: TargetFile;
  restoreId: string;
  groups: Group[];
  spiders: () => RestoreTaskSpec[];
  parallel: number | undefined;
  emit: (e: RestoreEvent) => void;
  signal: AbortSignal | undefined;
  plan: string[];
}

export async function carryOut(run: Run): Promise<RestoreOutcome> {
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
    // The agent names the instance in its error (for status and its log); every line here does too.
    const own = `${describeTarget(t.spec.target)}: `;
    const error = progress.error.startsWith(own) ? progress.error.slice(own.length) : progress.error;
    t.end = { kind: 'failed', error };
    t.phase = 'failed';
    event('failed', { error });
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
