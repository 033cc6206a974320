// One run at a time of a look the daemon makes off the tick (the repository check, mysql-crond's
// jobs, the archivers, the archive's holes): a call while a run is in flight is dropped, a failure
// is handed to onError (the look never throws into a timer), and shutdown awaits what runs.
export interface SingleFlight {
  /** Starts `fn` unless a run is in flight; false when it did not. */
  run(fn: () => Promise<void>): boolean;
  /** The run in flight, for shutdown to await. */
  inFlight(): Promise<void> | undefined;
}

export function singleFlight(onError: (err: unknown) => void): SingleFlight {
  let running: Promise<void> | undefined;
  return {
    run(fn) {
      if (running !== undefined) return false;
      running = fn()
        .catch(onError)
        .finally(() => {
          running = undefined;
        });
      return true;
    },
    inFlight: () => running,
  };
}
