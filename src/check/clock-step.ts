// A step of an instance's database clock between two looks of the daemon. Ages follow the
// database clock by design (SPEC §5), so a step (+13 h) would by itself expire waiting tasks or
// time out a running backup: a step is measured here, against this process's monotonic clock, from
// the rows seen at both looks (their CreatedAt never changes, so their age moves with the database
// clock alone). No statement of its own: an idle tick reads no row and needs none. Pure.

/** One look at an instance: when (monotonic ms) and each unfinished task's CreatedAt age (s). */
export interface ClockLook {
  atMs: number;
  ages: ReadonlyMap<string, number>;
}

/** A step smaller than this is drift or a slow tick: a few ticks, never under 30 s. */
export function clockStepThresholdS(tickIntervalMs: number): number {
  return Math.max(30, (3 * tickIntervalMs) / 1000);
}

/**
 * How many seconds the database clock moved beyond the monotonic one since `prev`; undefined when
 * no row was seen at both looks (nothing to judge by, and nothing whose age could mislead).
 */
export function clockStepS(prev: ClockLook | undefined, now: ClockLook): number | undefined {
  if (prev === undefined) return undefined;
  const elapsedS = (now.atMs - prev.atMs) / 1000;
  for (const [key, age] of now.ages) {
    const before = prev.ages.get(key);
    if (before !== undefined) return age - before - elapsedS;
  }
  return undefined;
}
