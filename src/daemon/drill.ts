// The scheduled restore drill ([drill], issue 20 item 6): on [drill] cron, the primary spider
// node's agent restores the newest complete backup to the newest restore point onto the scratch
// instances of its target file (runRestore, the `restore` command's own coordinator, injected by
// whoever assembles the daemon), reads check_sql through the restored spider node, and wipes the
// scratch instances unless `keep`. One drill at a time: a slot that comes while one runs is
// skipped and logged, as is one while the host or the cluster is paused. Every spider host with
// [drill] runs the cron; tdbctl decides at each slot which one drills, as for the schedule.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { isSpiderInstance } from '../config/instance.js';
import { connect } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { commandConnectOptions } from '../cluster/session.js';
import type { RestoreEvent, RestoreOutcome, RestoreRequest } from '../recovery/job.js';
import { describeTarget } from '../recovery/job.js';
import {
  checkFailure,
  drillLogLine,
  drillRecord,
  remember,
  restoreFailure,
  slotDecision,
  type DrillMemory,
  type DrillRecord,
  type DrillStatus,
} from '../recovery/drill-model.js';
import { readDrillTarget, type DrillInstance, type DrillTarget } from '../recovery/drill-target.js';
import { dropSchema, userSchemas } from '../sql/recovery.js';
import { firstValue } from '../sql/scratch.js';
import { setSqlLogBin } from '../sql/tasks.js';
import { readDrillMemory, writeDrillMemory } from '../state/drill-memory.js';
import { startCron, type CronJob } from './cron.js';

/** src/recovery/run-restore.ts's runRestore, passed in where the daemon is assembled. */
export type RunRestore = (
  config: AgentConfig,
  req: RestoreRequest,
  onEvent?: (e: RestoreEvent) => void,
  signal?: AbortSignal,
) => Promise<RestoreOutcome>;

export interface DrillDeps {
  config: () => AgentConfig;
  logger: () => Logger;
  /** Why nothing may start now (this host's or the cluster's pause); undefined when nothing holds it. */
  paused: () => string | undefined;
  runRestore: RunRestore;
  /** A drill ended (logged and remembered already): metrics, and the last error when it failed. */
  ended: (memory: DrillMemory) => void;
  /** Something `status` shows changed (a drill started, the cron was re-armed). */
  changed: () => void;
}

/** Why this host does not drill at a slot, said once per change (not every slot). */
type Idle = 'not-spider' | 'not-primary';

export class RestoreDrill {
  private job: CronJob | undefined;
  private armed: string | undefined;
  private running: { since: Date; done: Promise<void> } | undefined;
  private readonly abort = new AbortController();
  private stopped = false;
  private idle: { why: Idle; text: string } | undefined;
  private memory: DrillMemory | undefined;

  constructor(private readonly deps: DrillDeps) {
    try {
      this.memory = readDrillMemory(deps.config().agent.stateDir);
    } catch (err) {
      deps.logger().error({ err: errorMessage(err) }, 'the last drill record cannot be read; it is overwritten by the next drill');
    }
  }

  /** What the last drill left behind (the metrics' gauges start from it). */
  get last(): DrillMemory | undefined {
    return this.memory;
  }

  /** Arms, re-arms or stops the cron after the config: at start and after each reload. */
  plan(): void {
    const { cron } = this.deps.config().drill;
    if (this.stopped || cron === this.armed) return;
    this.job?.stop();
    this.job = undefined;
    this.armed = cron;
    this.idle = undefined;
    if (cron === undefined) {
      this.deps.logger().info('restore drill off');
    } else {
      const { target, keep } = this.deps.config().drill;
      this.job = startCron(cron, (at) => this.slot(at), this.deps.logger(), 'spiderbackup-drill');
      this.deps.logger().info({ cron, target, keep }, 'restore drill on [drill] cron (on the primary spider node)');
    }
    this.deps.changed();
  }

  status(now = new Date()): DrillStatus | undefined {
    const { cron, target, keep } = this.deps.config().drill;
    if (cron === undefined || target === undefined) return undefined;
    const next = this.job?.nextRun();
    return {
      cron,
      target,
      keep,
      ...(next !== undefined && next.getTime() >= now.getTime() - 1000 ? { nextRun: next.toISOString() } : {}),
      ...(this.running ? { runningSince: this.running.since.toISOString() } : {}),
      ...(this.idle ? { idle: this.idle.text } : {}),
      ...(this.memory ? { last: this.memory.last } : {}),
      ...(this.memory?.lastSuccessAt !== undefined ? { lastSuccessAt: this.memory.lastSuccessAt } : {}),
    };
  }

  /** No more drills; the one running is asked to stop (its restore's signal) and waited for up to `ms`. */
  async stop(ms: number): Promise<void> {
    this.stopped = true;
    this.job?.stop();
    this.job = undefined;
    if (!this.running) return;
    this.abort.abort();
    const timer = new AbortController();
    await Promise.race([this.running.done, delay(ms, undefined, { signal: timer.signal }).catch(() => {})]);
    timer.abort();
  }

  /** node-cron's callback: returns at once, so the overlap is decided and said here, not by node-cron. */
  private slot(at: Date): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const log = this.deps.logger();
    const d = slotDecision(at, this.running, this.deps.paused(), new Date());
    if (!d.run) {
      log[d.level]({ slot: at.toISOString() }, d.why);
      return Promise.resolve();
    }
    const since = new Date();
    const done = this.drill(since)
      .catch((err: unknown) => log.error({ err: errorMessage(err) }, 'restore drill: internal error'))
      .finally(() => {
        this.running = undefined;
        this.deps.changed();
      });
    this.running = { since, done };
    return Promise.resolve();
  }

  private async drill(since: Date): Promise<void> {
    const config = this.deps.config();
    const log = this.deps.logger().child({ drill: since.toISOString() });
    const toTime = await this.primaryClock(config, log);
    if (toTime === undefined) return;
    this.deps.changed();
    const started = new Date();
    let restoreId: string | undefined;
    let value: string | null | undefined;
    let error: string | undefined;
    let target: DrillTarget | undefined;
    try {
      target = readDrillTarget(config.drill.target as string);
      log.info(
        { target: target.file, toTime },
        `restore drill: restoring the newest complete backup to the newest point at or before ${toTime}`,
      );
      const outcome = await this.deps.runRestore(
        config,
        { targetFile: target.file, requireScratch: true, toTime },
        (e) => logEvent(log, e),
        this.abort.signal,
      );
      restoreId = outcome.restoreId;
      error = restoreFailure(outcome);
      if (error === undefined && config.drill.checkSql !== undefined) {
        value = await readCheck(config, target.spiders[0] as DrillInstance, config.drill.checkSql);
        error = checkFailure(value, config.drill.expect, config.drill.checkSql);
      }
    } catch (err) {
      error = errorMessage(err);
    }
    const rec: DrillRecord = drillRecord(started, new Date(), { restoreId, error, value });
    // A restore refused before it wrote anything (no id) left nothing to wipe: the targets may even
    // be another restore's, which is why it was refused.
    if (target && restoreId !== undefined && !config.drill.keep) {
      const wipeError = await wipe(config, target, log);
      if (wipeError !== undefined) rec.wipeError = wipeError;
    }
    if (rec.outcome === 'success') log.info({ restoreId, durationMs: rec.durationMs, outcome: rec.outcome }, drillLogLine(rec));
    else log.error({ restoreId, durationMs: rec.durationMs, outcome: rec.outcome, err: rec.error }, drillLogLine(rec));
    this.memory = remember(this.memory, rec);
    try {
      writeDrillMemory(config.agent.stateDir, this.memory);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'cannot write the drill record');
    }
    this.deps.ended(this.memory);
  }

  /**
   * The primary's database clock, the time the drill restores to (the newest point at or before
   * it); undefined when this host does not drill (said once until it changes). A failure to ask
   * is a failed drill: it is not known whether this host should have drilled.
   */
  private async primaryClock(config: AgentConfig, log: Logger): Promise<string | undefined> {
    if (!discoverInstances(config.agent.configDir).instances.some(isSpiderInstance)) {
      this.idleAs('not-spider', 'this host has no spider instance config', log);
      return undefined;
    }
    // Loaded at the first slot, not with the daemon: most hosts never drill.
    const [{ openClusterSession, NotPrimaryError }, { databaseNow }] = await Promise.all([
      import('../cluster/session.js'),
      import('../sql/restore-point.js'),
    ]);
    const session = openClusterSession(config, undefined);
    try {
      await session.primaryServers();
      this.idle = undefined;
      return await databaseNow(await session.connections.get(session.spider));
    } catch (err) {
      if (err instanceof NotPrimaryError) {
        this.idleAs('not-primary', `this spider node is not the primary (${err.message})`, log);
        return undefined;
      }
      const rec = drillRecord(new Date(), new Date(), {
        error: `cannot tell whether this is the primary spider node: ${errorMessage(err)}`,
      });
      log.error({ err: rec.error, outcome: rec.outcome }, drillLogLine(rec));
      this.memory = remember(this.memory, rec);
      try {
        writeDrillMemory(config.agent.stateDir, this.memory);
      } catch (e) {
        log.error({ err: errorMessage(e) }, 'cannot write the drill record');
      }
      this.deps.ended(this.memory);
      return undefined;
    } finally {
      await session.close();
    }
  }

  private idleAs(why: Idle, text: string, log: Logger): void {
    if (this.idle?.why === why) return;
    this.idle = { why, text };
    log.info(`no restore drill while ${text} (said once until it changes)`);
    this.deps.changed();
  }
}

/** The restore's own events, at the level the drill's log wants (a kind added later is logged as it comes). */
function logEvent(log: Logger, e: RestoreEvent): void {
  switch (e.kind) {
    case 'planned':
      log.info({ restoreId: e.restoreId, backupId: e.backupId, point: e.point, tasks: e.tasks }, 'restore drill: planned');
      return;
    case 'routed':
      log.info({ spiders: e.spiders.map(describeTarget) }, 'restore drill: the new spider node(s) routed');
      return;
    case 'phase': {
      const where = { target: describeTarget(e.target), role: e.role, shard: e.shard };
      if (e.phase === 'failed') log.warn({ ...where, err: e.error }, 'restore drill: task failed');
      else log.debug({ ...where, phase: e.phase, bytes: e.bytes, ms: e.ms }, 'restore drill: phase');
      return;
    }
    default:
      log.info({ event: e as unknown }, 'restore drill: event');
  }
}

async function readCheck(config: AgentConfig, spider: DrillInstance, sql: string): Promise<string | null | undefined> {
  const c = await connect(spider, commandConnectOptions(config.schedule.statementTimeoutMs));
  try {
    return await firstValue(c, sql);
  } finally {
    await c.close();
  }
}

/**
 * Drops every schema but the system ones and infodba_schema on each target instance, spider nodes
 * first (nothing routes to the shards meanwhile), without binlog. What could not be wiped, one
 * line; undefined when all went.
 */
async function wipe(config: AgentConfig, target: DrillTarget, log: Logger): Promise<string | undefined> {
  const problems: string[] = [];
  for (const inst of [...target.spiders, ...target.shards]) {
    try {
      const c = await connect(inst, commandConnectOptions(config.schedule.statementTimeoutMs));
      try {
        // A replica wipes its own copy: nothing of it reaches another server.
        await setSqlLogBin(c, false);
        const schemas = await userSchemas(c);
        for (const s of schemas) await dropSchema(c, s);
        log.debug({ target: describeTarget(inst), schemas }, 'restore drill: scratch instance wiped');
      } finally {
        await c.close();
      }
    } catch (err) {
      problems.push(errorMessage(err));
    }
  }
  if (problems.length === 0) return undefined;
  const text = problems.join('; ');
  log.error({ err: text }, 'restore drill: the scratch instances could not all be wiped (the next drill wipes them first)');
  return text;
}
