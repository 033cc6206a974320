// A stand-in for dbbackup: the backup command the tests configure. It records every run, and
// behaves as test/<dir>/behaviour.<port>.json says: exit code, block until released, fork a
// grandchild, ignore SIGTERM. Blocking on a file (not sleeping) keeps the tests deterministic.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  /** Start a helper in its own session (setsid, out of the tree and the group) that lives until killed. */
  doubleFork?: boolean;
  /**
   * Write a file of `bytes` bytes into <BackupDir of --config>/<backup id>/ every `everyMs` (at once
   * first) while it runs, as a real backup fills its BackupDir; with `block`, until released.
   */
  write?: { bytes: number; everyMs: number };
}

const { values } = parseArgs({
  strict: false,
  options: {
    dir: { type: 'string' },
    port: { type: 'string' },
    'backup-id': { type: 'string' },
    'shard-value': { type: 'string' },
    config: { type: 'string' },
    kind: { type: 'string' },
  },
});
const dir = String(values.dir);
const port = String(values.port);
const file = join(dir, `behaviour.${port}.json`);
const b: Behaviour = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Behaviour) : {};
if (b.ignoreTerm) process.on('SIGTERM', () => {});

// Overlap detection: every run registers itself while it lives and records which other runs of
// this workspace were alive when it started. Two backups at once on one host is the bug to catch.
const live = join(dir, 'live');
mkdirSync(live, { recursive: true });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};
const concurrent = readdirSync(live)
  .map(Number)
  .filter((pid) => pid !== process.pid && alive(pid));
writeFileSync(join(live, String(process.pid)), '');
process.on('exit', () => rmSync(join(live, String(process.pid)), { force: true }));

let grandchild: number | undefined;
if (b.doubleFork) {
  const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'double-forked-helper'], { stdio: 'ignore', detached: true });
  g.unref();
  grandchild = g.pid;
} else if (b.lingering) {
  const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'lingering-helper'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  g.unref();
  grandchild = g.pid;
} else if (b.grandchild) {
  const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'grandchild-of', String(values['backup-id'])], {
    stdio: 'ignore',
  });
  grandchild = g.pid;
}
const run = {
  port: Number(port),
  backupId: values['backup-id'],
  shardValue: values['shard-value'],
  config: values.config,
  kind: values.kind ?? 'remote',
  pid: process.pid,
  grandchild,
  concurrent,
  cwd: process.cwd(),
  argv: process.argv.slice(2),
};
appendFileSync(join(dir, 'runs.jsonl'), `${JSON.stringify(run)}\n`);
if (b.stderr) process.stderr.write(b.stderr);

let writer: NodeJS.Timeout | undefined;
if (b.write) {
  const { bytes, everyMs } = b.write;
  const ini = readFileSync(String(values.config), 'utf8');
  const backupDir = /^\s*BackupDir\s*=\s*(.+?)\s*$/m.exec(ini)?.[1] as string;
  const out = join(backupDir, String(values['backup-id']));
  mkdirSync(out, { recursive: true });
  let n = 0;
  const step = () => writeFileSync(join(out, `part-${n++}`), Buffer.alloc(bytes, 7));
  step();
  writer = setInterval(step, everyMs);
}

const finish = () => {
  if (writer) clearInterval(writer);
  process.exit(b.exitCode ?? 0);
};
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
