// The health and metrics endpoint: GET /healthz and GET /metrics, nothing else.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** The metrics endpoint cannot listen: fatal at start-up, a refused reload later. */
export class MetricsListenError extends Error {
  override readonly name = 'MetricsListenError';
}

export interface Health {
  ok: boolean;
  body: Record<string, unknown>;
}

export interface HttpDeps {
  registry: Registry;
  health: () => Health;
  onError: (err: Error) => void;
}

export interface HttpEndpoint {
  address: string;
  close(): Promise<void>;
}

export async function startHttp(host: string, port: number, deps: HttpDeps): Promise<HttpEndpoint> {
  // Loaded here: with [metrics] listen = off the daemon never needs an HTTP server.
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const h = deps.health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(h.body)}\n`);
      return;
    }
    if (path === '/metrics') {
      deps.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': deps.registry.contentType }).end(text))
        .catch((err: unknown) => {
          deps.onError(err as Error);
          res.writeHead(500).end();
        });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
  });
  // Scrapers keep connections open; they must not hold the daemon up at shutdown.
  server.keepAliveTimeout = 5000;
  await listen(server, host, port);
  server.on('error', deps.onError);
  const a = server.address() as AddressInfo;
  return {
    address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
