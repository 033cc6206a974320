// Backoff for tasks whose supervisor could not start them (database refusing connections, …): the
// next attempt waits 10 s, 20 s, 40 s … up to 10 min, instead of respawning every tick.
export const BACKOFF = { firstMs: 10_000, capMs: 600_000 } as const;

export function backoffDelayMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(BACKOFF.firstMs * 2 ** (failures - 1), BACKOFF.capMs);
}

interface Entry {
  failures: number;
  notBefore: number;
}

/** Per task key; owned by one daemon (or one CLI run) and passed in explicitly. */
export class Backoff {
  private readonly entries = new Map<string, Entry>();

  /** Whether the task must wait; `now` in ms. */
  waiting(key: string, now: number): boolean {
    const e = this.entries.get(key);
    return e !== undefined && now < e.notBefore;
  }

  /** Records a failed start; returns the delay until the next attempt. */
  failed(key: string, now: number): number {
    const failures = (this.entries.get(key)?.failures ?? 0) + 1;
    const delay = backoffDelayMs(failures);
    this.entries.set(key, { failures, notBefore: now + delay });
    return delay;
  }

  /** Started (or finished some other way): forget it. Returns whether it was backing off. */
  clear(key: string): boolean {
    return this.entries.delete(key);
  }
}
