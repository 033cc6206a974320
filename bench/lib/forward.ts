// Plain TCP forwarders: many distinct Host:Port endpoints in front of a few real instances, so a
// daemon can be given dozens of instance drop-ins without dozens of mariadbd. They run in the
// bench's own process, so what they cost never shows in the daemon's CPU or memory.
import net from 'node:net';
import { portPlan, PORTS_ENV, pickPort } from '../../src/sandbox/ports.js';
import { TDBCTL_PORT_OFFSET } from '../../src/sandbox/cluster.js';

export interface Forwarder {
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 at a free data port of SPIDERBACKUP_TEST_PORTS and forwards to `to`. */
export async function forward(to: { host: string; port: number }, taken: Set<number>): Promise<Forwarder> {
  const plan = portPlan(process.env[PORTS_ENV], TDBCTL_PORT_OFFSET);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const up = net.connect(to.port, to.host);
    sockets.add(c).add(up);
    c.pipe(up);
    up.pipe(c);
    const end = () => {
      c.destroy();
      up.destroy();
      sockets.delete(c);
      sockets.delete(up);
    };
    c.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  for (let attempt = 1; ; attempt++) {
    const port = await pickPort(plan.data, taken, { host: '127.0.0.1' });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return {
        port,
        close: () =>
          new Promise<void>((resolve) => {
            for (const s of sockets) s.destroy();
            server.close(() => resolve());
          }),
      };
    } catch (err) {
      if (attempt >= 3) throw err; // someone took the port between the probe and the listen
    }
  }
}
