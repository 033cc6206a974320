// The tick loop: runs `tick` every interval, never two at once. A tick that outlasts the interval
// delays the next one (reported through onLate) instead of piling up; a trigger (a supervisor
// exited) runs a tick now, or right after the one in flight.

export interface TickerOptions {
  intervalMs: number;
  tick: (reason: string) => Promise<void>;
  onLate?: (info: { lateByMs: number; durationMs: number; intervalMs: number }) => void;
}

export interface Ticker {
  start(): void;
  /** An early tick; coalesced with any other trigger that arrives while one is pending. */
  trigger(reason: string): void;
  setInterval(ms: number): void;
  /** Stops ticking and waits up to timeoutMs for a tick in flight; true when none is left. */
  stop(timeoutMs: number): Promise<boolean>;
  busy(): boolean;
}

/** When the next tick is due, on a fixed rate measured from tick starts. */
export function nextDelay(startedAt: number, finishedAt: number, intervalMs: number): { delayMs: number; lateByMs: number } {
  const due = startedAt + intervalMs;
  return finishedAt >= due ? { delayMs: 0, lateByMs: finishedAt - due } : { delayMs: due - finishedAt, lateByMs: 0 };
}

export function createTicker(opts: TickerOptions): Ticker {
  let intervalMs = opts.intervalMs;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let pending: string | undefined;
  let stopped = true;

  const arm = (delayMs: number, reason: string) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      run(reason);
    }, delayMs);
  };

  const run = (reason: string) => {
    if (stopped) return;
    if (inFlight) {
      pending ??= reason;
      return;
    }
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    const startedAt = Date.now();
    inFlight = opts
      .tick(reason)
      .catch(() => {
        // the tick reports its own errors; the loop must go on regardless
      })
      .finally(() => {
        inFlight = undefined;
        if (stopped) return;
        if (pending !== undefined) {
          const next = pending;
          pending = undefined;
          arm(0, next);
          return;
        }
        const finishedAt = Date.now();
        const { delayMs, lateByMs } = nextDelay(startedAt, finishedAt, intervalMs);
        if (lateByMs > 0) opts.onLate?.({ lateByMs, durationMs: finishedAt - startedAt, intervalMs });
        arm(delayMs, 'interval');
      });
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      arm(0, 'start');
    },
    trigger(reason) {
      run(reason);
    },
    setInterval(ms) {
      intervalMs = ms;
      if (!stopped && !inFlight) arm(ms, 'interval');
    },
    async stop(timeoutMs) {
      stopped = true;
      pending = undefined;
      if (timer) clearTimeout(timer);
      timer = undefined;
      const current = inFlight;
      if (!current) return true;
      let t: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        t = setTimeout(() => resolve(false), timeoutMs);
      });
      const done = await Promise.race([current.then(() => true), timedOut]);
      clearTimeout(t);
      return done;
    },
    busy: () => inFlight !== undefined,
  };
}
