// A stand-in for dbbackup: the backup command the tests configure. It records every run, and
// behaves as test/<dir>/behaviour.<port>.json says: exit code, block until released, fork a
// grandchild, ignore SIGTERM. Blocking on a file (not sleeping) keeps the tests deterministic.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export interface Behaviour {
  exitCode?: number;
  /** Wait until <dir>/release.<port> exists. */
  block?: boolean;
  /** Fork a grandchild that lives until killed; its pid is recorded. */
  grandchild?: boolean;
  ignoreTerm?: boolean;
  stderr?: string;
  /** Leave a detached helper behind that keeps our stderr open, then exit (a daemonising tool). */
  lingering?: boolean;
}

const { values } = parseArgs({
  strict: false,
  options: { dir: { type: 'string' }, port: { type: 'string' }, 'backup-id': { type: 'string' }, 'shard-value': { type: 'string' }, config: { type: 'string' }, kind: { type: 'string' } },
});
const dir = String(values.dir);
const port = String(values.port);
const file = join(dir, `behaviour.${port}.json`);
const b: Behaviour = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Behaviour) : {};
if (b.ignoreTerm) process.on('SIGTERM', () => {});

let grandchild: number | undefined;
if (b.lingering) {
  const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'lingering-helper'], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  g.unref();
  grandchild = g.pid;
} else if (b.grandchild) {
  const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'grandchild-of', String(values['backup-id'])], { stdio: 'ignore' });
  grandchild = g.pid;
}
appendFileSync(
  join(dir, 'runs.jsonl'),
  `${JSON.stringify({ port: Number(port), backupId: values['backup-id'], shardValue: values['shard-value'], config: values.config, kind: values.kind ?? 'remote', pid: process.pid, grandchild, cwd: process.cwd(), argv: process.argv.slice(2) })}\n`,
);
if (b.stderr) process.stderr.write(b.stderr);

const finish = () => process.exit(b.exitCode ?? 0);
if (b.block) {
  const timer = setInterval(() => {
    if (existsSync(join(dir, `release.${port}`))) {
      clearInterval(timer);
      finish();
    } else if (!existsSync(dir)) {
      process.exit(99); // the workspace is gone (its test failed or was killed): nobody will release us
    }
  }, 50);
} else {
  finish();
}
