// Whether an instance's agent is alive, from its presence (SPEC §5). Pure.

export type AgentState = 'alive' | 'lost' | 'paused' | 'none';

/** An agent is lost once its presence is this many of its own ticks old … */
export const LOST_AFTER_TICKS = 3;
/**
 * … and never sooner than this: at a short tick a loaded host (or a long tick of its own) is late
 * by more than a few ticks without being gone. 30 s is 3 ticks of the default 10 s, so nothing
 * changes there.
 */
export const LOST_FLOOR_MS = 30_000;
/** LastTick and NOW() have one-second resolution: an age can read up to 1 s more than it is. */
const RESOLUTION_MS = 1000;

export interface PresenceAge {
  /** Seconds since its last tick, by the database clock. */
  ageS: number;
  /** The tick interval the agent announced. */
  tickIntervalMs: number;
  paused: boolean;
}

/**
 * How old a presence may be before its agent counts as lost: max(3 ticks, 30 s), plus the
 * timestamps' resolution. The one rule of `status --cluster`, `schedule --wait` and the README.
 */
export function lostAfterMs(tickIntervalMs: number): number {
  return Math.max(LOST_AFTER_TICKS * tickIntervalMs, LOST_FLOOR_MS) + RESOLUTION_MS;
}

/** `none` when no agent ever announced itself; `lost` wins over `paused` (a dead agent's last word). */
export function agentState(p: PresenceAge | undefined): AgentState {
  if (p === undefined) return 'none';
  if (p.ageS * 1000 > lostAfterMs(p.tickIntervalMs)) return 'lost';
  return p.paused ? 'paused' : 'alive';
}
