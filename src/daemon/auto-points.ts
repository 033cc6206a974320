// Automatic restore points ([schedule] restore_point_interval, issue 19 item 3): the agent of the
// primary spider node takes one every interval, off the tick, named after its slot (auto-YYYYMMDD-
// HHMMSS, UTC), recorded as `restore-point` records it (and in the repository). Slots are
// multiples of the interval since the epoch, so the names do not depend on when the agent
// started. One at a time: the slots a point outlasts are skipped, never queued. Every host with a
// spider instance runs the loop; tdbctl decides at each slot which one takes the point, as for the
// per-backup points. A failure is logged and counted; the next slot tries again.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { formatConfigDuration } from '../config/duration.js';
import { discoverInstances } from '../config/discover.js';
import { isSpiderInstance } from '../config/instance.js';
import { autoPointName } from '../cluster/restore-point-model.js';
import { errorMessage } from '../errors.js';
import { formatDuration } from '../format.js';

export interface AutoPointsDeps {
  config: () => AgentConfig;
  logger: () => Logger;
  /** An operator pause in force (this host's or the cluster's): no point is taken meanwhile. */
  paused: () => boolean;
  taken: (pauseMs: number) => void;
  /** A point that could not be taken (logged already). */
  failed: (message: string) => void;
}

/** Why no point is taken at a slot, said once per change (not every slot). */
type Idle = 'not-spider' | 'not-primary' | 'paused';

export class AutoRestorePoints {
  private intervalMs: number | undefined;
  private loop: Promise<void> | undefined;
  private wake = new AbortController();
  private stopped = false;
  private idle: Idle | undefined;

  constructor(private readonly deps: AutoPointsDeps) {}

  /** Starts, re-plans or stops the loop after the config: at start and after each reload. */
  plan(): void {
    const ms = this.deps.config().schedule.restorePointIntervalMs;
    if (this.stopped || ms === this.intervalMs) return;
    this.intervalMs = ms;
    // A wait for the old interval's slot ends now; a point being taken is left to finish.
    this.wake.abort();
    this.wake = new AbortController();
    if (ms === undefined) {
      this.deps.logger().info('automatic restore points off');
      return;
    }
    this.deps.logger().info({ intervalMs: ms }, `automatic restore points every ${formatConfigDuration(ms)} (on the primary spider node)`);
    this.loop ??= this.run()
      .catch((err: unknown) => this.deps.logger().error({ err: errorMessage(err) }, 'automatic restore points stopped'))
      .finally(() => {
        this.loop = undefined;
      });
  }

  /** No more points; waits up to `ms` for the one being taken. */
  async stop(ms: number): Promise<void> {
    this.stopped = true;
    this.wake.abort();
    if (!this.loop) return;
    const timer = new AbortController();
    await Promise.race([this.loop, delay(ms, undefined, { signal: timer.signal }).catch(() => {})]);
    timer.abort();
  }

  private async run(): Promise<void> {
    let lastSlot: number | undefined;
    while (!this.stopped && this.intervalMs !== undefined) {
      const every = this.intervalMs;
      const now = Date.now();
      const slot = (Math.floor(now / every) + 1) * every;
      const skipped = lastSlot === undefined ? 0 : Math.max(0, Math.round((slot - lastSlot) / every) - 1);
      if (skipped > 0)
        this.deps
          .logger()
          .warn({ skipped, intervalMs: every }, `the last restore point outlasted the interval: ${skipped} slot(s) skipped`);
      try {
        await delay(slot - now, undefined, { signal: this.wake.signal });
      } catch {
        lastSlot = undefined; // re-planned (slots of another length) or stopping
        continue;
      }
      if (this.stopped || this.intervalMs !== every) continue;
      lastSlot = slot;
      await this.takeOne(new Date(slot));
    }
  }

  private async takeOne(slot: Date): Promise<void> {
    const config = this.deps.config();
    const name = autoPointName(slot);
    const log = this.deps.logger().child({ restorePoint: name });
    if (this.deps.paused()) return this.idleAs('paused', log);
    try {
      if (!discoverInstances(config.agent.configDir).instances.some(isSpiderInstance)) return this.idleAs('not-spider', log);
      // Loaded at the first slot, not with the daemon: most hosts never take a point.
      const [{ openClusterSession, NotPrimaryError }, { takeRestorePoint, RestorePointExistsError }] = await Promise.all([
        import('../cluster/session.js'),
        import('../cluster/restore-point.js'),
      ]);
      const session = openClusterSession(config, undefined);
      try {
        const res = await takeRestorePoint({ config, logger: log }, session, { name });
        this.idle = undefined;
        const p = res.point;
        log.info(
          { pauseMs: p.pauseMs, acquireMs: p.acquireMs, holdMs: p.holdMs, attempts: res.attempts, stored: res.stored },
          `automatic restore point ${name} at ${p.takenAt} (` +
            `${p.shards.map((s) => `${s.serverName} ${s.gtid}`).join(', ')}; commits paused ${formatDuration(p.pauseMs)})` +
            (res.stored !== undefined ? `; written to ${res.stored}` : ''),
        );
        this.deps.taken(p.pauseMs);
      } catch (err) {
        if (err instanceof NotPrimaryError) return this.idleAs('not-primary', log, err.message);
        if (err instanceof RestorePointExistsError) return log.info(`automatic restore point ${name} exists already; nothing taken`);
        throw err;
      } finally {
        await session.close();
      }
    } catch (err) {
      const message = `automatic restore point ${name} not taken: ${errorMessage(err)}`;
      log.error({ err: errorMessage(err) }, message);
      this.deps.failed(message);
    }
  }

  private idleAs(why: Idle, log: Logger, detail?: string): void {
    if (this.idle === why) return;
    this.idle = why;
    const words: Record<Idle, string> = {
      'not-spider': 'this host has no spider instance config',
      'not-primary': `this spider node is not the primary${detail ? ` (${detail})` : ''}`,
      paused: 'paused',
    };
    log.info(`no automatic restore point while ${words[why]} (said once until it changes)`);
  }
}
