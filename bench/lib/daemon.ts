// A daemon for a bench section: its own workspace (agent config, state dir, host lock, the fake
// backup as its backup command) serving the given instance drop-ins.
import type { Cluster, Instance } from '../../src/sandbox/cluster.js';
import { DaemonProcess } from '../../test/support/daemon.js';
import { Workspace } from '../../test/support/workspace.js';

export interface BenchContext {
  cluster: Cluster;
  /** The cluster's masters and replicas (the spider node is never a drop-in: it queries the masters). */
  instances: Instance[];
}

/** A workspace serving `instances` (an instance's `port` may be a forwarder's). */
export function workspaceFor(cluster: Cluster, instances: Instance[], extra: Record<string, Record<string, string>> = {}): Workspace {
  const ws = new Workspace(extra);
  for (const i of instances) cluster.writeInstanceIni(ws.confDir, i);
  return ws;
}

/** Runs `fn` with a started daemon (first tick done) of `ws`, and always stops it. */
export async function withDaemon<T>(ws: Workspace, fn: (d: DaemonProcess) => Promise<T>): Promise<T> {
  const d = new DaemonProcess(ws);
  try {
    await d.ready();
    return await fn(d);
  } finally {
    await stop(d);
  }
}

/** SIGTERM, and SIGKILL if it has not exited after 40 s. */
export async function stop(d: DaemonProcess): Promise<void> {
  if (d.child.exitCode === null && d.child.signalCode === null) {
    d.signal('SIGTERM');
    const t = setTimeout(() => d.signal('SIGKILL'), 40_000);
    await d.exited;
    clearTimeout(t);
  }
  await d.dispose();
}
