// Signals that arrive before their real handler exists. The daemon loads its modules for a while
// after start, and SIGHUP's default action kills — a death systemd's Restart=on-failure does not
// restart. So they are recorded from the first moment and replayed once the handler is in place.

export interface HeldSignals {
  /** Installs the real handler, then drops the placeholder and replays a signal seen meanwhile. */
  take(signal: NodeJS.Signals, handler: (signal: NodeJS.Signals) => void): void;
  /** Not wanted after all (another command): placeholders dropped, a signal seen meanwhile re-raised. */
  release(): void;
}

export function holdSignals(signals: readonly NodeJS.Signals[]): HeldSignals {
  const seen = new Set<NodeJS.Signals>();
  const placeholders = new Map<NodeJS.Signals, () => void>();
  for (const sig of signals) {
    const record = () => void seen.add(sig);
    placeholders.set(sig, record);
    process.on(sig, record);
  }
  const drop = (sig: NodeJS.Signals) => {
    const p = placeholders.get(sig);
    if (p) process.off(sig, p);
    placeholders.delete(sig);
  };
  return {
    take(sig, handler) {
      process.on(sig, handler);
      drop(sig);
      if (seen.delete(sig)) handler(sig);
    },
    release() {
      for (const sig of [...placeholders.keys()]) drop(sig);
      for (const sig of seen) process.kill(process.pid, sig);
      seen.clear();
    },
  };
}
