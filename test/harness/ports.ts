// Free TCP port selection for the test topology. Ports are probed by binding 127.0.0.1; the
// search starts at a random offset so concurrent runs (or servers left over from a killed run)
// rarely probe the same ports. A probe can still race with another process; the caller retries
// a server start on a fresh port when mariadbd reports the port as taken.
import net from 'node:net';

export interface PortRange {
  min: number;
  max: number;
}

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/**
 * Picks a free port in `range` that is not in `taken`, and for which `port + offset` is free and
 * not taken for every offset in `companions` (e.g. the tdbctl stand-in at spider port + 1000).
 * The chosen port and its companions are added to `taken`.
 */
export async function pickPort(range: PortRange, taken: Set<number>, companions: number[] = []): Promise<number> {
  const size = range.max - range.min + 1;
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = range.min + ((start + i) % size);
    const all = [port, ...companions.map((o) => port + o)];
    if (all.some((p) => taken.has(p))) continue;
    if (!(await allFree(all))) continue;
    for (const p of all) taken.add(p);
    return port;
  }
  throw new Error(`no free port in ${range.min}-${range.max}`);
}

async function allFree(ports: number[]): Promise<boolean> {
  for (const p of ports) if (!(await isPortFree(p))) return false;
  return true;
}
