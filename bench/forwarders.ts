// TCP forwarders for bench/scale.ts, in a process of their own so that forwarding bytes for a
// thousand endpoints does not eat the event loop of the spiderbackup code being measured.
// Started with child_process.fork; it exits when its parent goes away.
//   → { kind: 'open', targets: number[] (upstream ports on 127.0.0.1), latencyMs, from, to }
//   ← { kind: 'opened', ports: number[] }          (one listening port per target, in order)
//   → { kind: 'stats' }  ← { kind: 'stats', accepted: number[] }   (connections accepted per forwarder)
import net from 'node:net';

export interface OpenRequest {
  kind: 'open';
  targets: number[];
  /** One-way delay added to every chunk: loopback has no network latency, a cluster does. */
  latencyMs: number;
  /** Ports are taken from this range, skipping ports in use (the caller's private port range). */
  from: number;
  to: number;
}
export type Request = OpenRequest | { kind: 'stats' };
export type Reply = { kind: 'opened'; ports: number[] } | { kind: 'stats'; accepted: number[] } | { kind: 'error'; message: string };

const accepted: number[] = [];
let nextPort = 0;

function listen(server: net.Server, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onError = () => resolve(false);
    server.once('error', onError);
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      server.off('error', onError);
      resolve(true);
    });
  });
}

async function open(req: OpenRequest): Promise<number[]> {
  const ports: number[] = [];
  nextPort = Math.max(nextPort, req.from);
  for (const target of req.targets) {
    const index = accepted.push(0) - 1;
    const server = net.createServer((client) => {
      accepted[index] = (accepted[index] ?? 0) + 1;
      const upstream = net.connect(target, '127.0.0.1');
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      const relay = (to: net.Socket) => (chunk: Buffer) => {
        if (req.latencyMs > 0) setTimeout(() => to.write(chunk), req.latencyMs);
        else to.write(chunk);
      };
      client.on('data', relay(upstream));
      upstream.on('data', relay(client));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    for (;;) {
      if (nextPort > req.to) throw new Error(`no free port left in ${req.from}-${req.to}`);
      if (await listen(server, nextPort++)) break;
    }
    ports.push((server.address() as net.AddressInfo).port);
  }
  return ports;
}

process.on('message', (msg: Request) => {
  const reply = (r: Reply) => process.send?.(r);
  if (msg.kind === 'stats') reply({ kind: 'stats', accepted: [...accepted] });
  else
    open(msg).then(
      (ports) => reply({ kind: 'opened', ports }),
      (err: unknown) => reply({ kind: 'error', message: String(err) }),
    );
});
process.on('disconnect', () => process.exit(0));
