// TCP forwarders for bench/scale.ts, in a process of their own so that forwarding bytes for a
// thousand endpoints does not eat the event loop of the spiderbackup code being measured.
// Started with child_process.fork; it exits when its parent goes away.
//   → { kind: 'open', targets: number[] (upstream ports on 127.0.0.1), net, latencyMs, from, to }
//   ← { kind: 'opened', endpoints: { host, port }[] }   (one listening address per target, in order)
// Each forwarder has a loopback address of its own (127.<net>.x.y, all of 127/8 is loopback on
// Linux), as each shard of a real cluster has a host of its own: a thousand forwarders then need
// no thousand ports, only one or a few of the caller's range.
//   → { kind: 'stats' }  ← { kind: 'stats', accepted: number[] }   (connections accepted per forwarder)
import net from 'node:net';

export interface OpenRequest {
  kind: 'open';
  targets: number[];
  /** Second octet of the forwarders' addresses: 127.<net>.x.y, one network per kind of instance. */
  net: number;
  /** One-way delay added to every chunk: loopback has no network latency, a cluster does. */
  latencyMs: number;
  /** Ports are taken from this range, skipping ports in use (the caller's private port range). */
  from: number;
  to: number;
}
export type Request = OpenRequest | { kind: 'stats' };
export interface ForwardedEndpoint {
  host: string;
  port: number;
}
export type Reply =
  { kind: 'opened'; endpoints: ForwardedEndpoint[] } | { kind: 'stats'; accepted: number[] } | { kind: 'error'; message: string };

const accepted: number[] = [];

function listen(server: net.Server, host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onError = () => resolve(false);
    server.once('error', onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', onError);
      resolve(true);
    });
  });
}

async function open(req: OpenRequest): Promise<ForwardedEndpoint[]> {
  const endpoints: ForwardedEndpoint[] = [];
  for (const [i, target] of req.targets.entries()) {
    // .0 and .255 avoided: 250 addresses per third octet.
    const host = `127.${req.net}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
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
    for (let port = req.from; ; port++) {
      if (port > req.to) throw new Error(`no free port left on ${host} in ${req.from}-${req.to}`);
      if (await listen(server, host, port)) break;
    }
    endpoints.push({ host, port: (server.address() as net.AddressInfo).port });
  }
  return endpoints;
}

process.on('message', (msg: Request) => {
  const reply = (r: Reply) => process.send?.(r);
  if (msg.kind === 'stats') reply({ kind: 'stats', accepted: [...accepted] });
  else
    open(msg).then(
      (endpoints) => reply({ kind: 'opened', endpoints }),
      (err: unknown) => reply({ kind: 'error', message: String(err) }),
    );
});
process.on('disconnect', () => process.exit(0));
