// A tool's whole stdout (latin1, so binary bytes such as mariadb-binlog's pass unchanged); a
// non-zero exit rejects with its stderr.
import { spawn } from 'node:child_process';

export function toolOutput(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out).toString('latin1')) : reject(new Error(`${cmd} exited ${code}: ${err}`)),
    );
  });
}
