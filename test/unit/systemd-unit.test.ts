// The shipped systemd unit and example config: the unit passes `systemd-analyze verify` (where
// systemd is installed) and keeps the settings the design depends on; the example config loads
// and documents every key the loader reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDaemonConfig } from '../../src/daemon/config.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const UNIT = join(root, 'systemd/spiderbackup.service');
const EXAMPLE = join(root, 'config/spiderbackup.ini');
const CLI = join(root, 'dist/src/bin/cli.js');

function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1] as string, [...(out.get(m[1] as string) ?? []), m[2] as string]);
  }
  return out;
}

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;

test('systemd unit passes systemd-analyze verify', { skip: hasSystemdAnalyze ? false : 'systemd-analyze is not installed' }, () => {
  // verify checks that ExecStart exists; point it at the built CLI in a temporary copy.
  const dir = mkdtempSync(join(tmpdir(), 'sb-unit-'));
  const copy = join(dir, 'spiderbackup.service');
  const text = readFileSync(UNIT, 'utf8').replace(/^ExecStart=\/usr\/bin\/spiderbackup /m, `ExecStart=${process.execPath} ${CLI} `);
  assert.notEqual(text, readFileSync(UNIT, 'utf8'), 'ExecStart was rewritten');
  writeFileSync(copy, text);
  const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
  const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('spiderbackup.service'));
  assert.deepEqual(complaints, [], `${r.stdout}${r.stderr}`);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('systemd unit keeps what the design depends on', () => {
  const d = directives(readFileSync(UNIT, 'utf8'));
  const one = (k: string) => d.get(k)?.join(' ');
  assert.equal(one('KillMode'), 'process', 'supervisors and backups must outlive the daemon');
  assert.equal(one('Type'), 'exec');
  assert.equal(one('User'), 'mysql');
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('ProtectHome'), 'read-only');
  assert.equal(one('PrivateTmp'), 'yes');
  assert.equal(one('StateDirectory'), 'spiderbackup');
  for (const p of ['/data/dbbak', '/home/mysql/dbbackup-go']) assert.match(one('ReadWritePaths') ?? '', new RegExp(`-?${p}( |$)`));
  // The host lock's directory: writable in the sandbox, made before the daemon starts, never removed.
  assert.match(one('ReadWritePaths') ?? '', /(^| )\/run\/lock\/spiderbackup( |$)/);
  assert.match(one('ExecStartPre') ?? '', /^\+\/usr\/bin\/install -d -o mysql -g mysql -m 0755 \/run\/lock\/spiderbackup$/);
  assert.equal(d.get('RuntimeDirectory'), undefined, 'systemd would remove the host lock directory on stop');
  assert.match(one('ExecStart') ?? '', /^\/usr\/bin\/spiderbackup daemon --agent-config \/etc\/spiderbackup\/spiderbackup.ini$/);
  const stopS = Number(/^(\d+)s$/.exec(one('TimeoutStopSec') ?? '')?.[1]);
  assert.ok(stopS > 30, "longer than the daemon's 30 s wait for a tick in flight");
});

test('example config loads and documents every key the loader reads', () => {
  const c = loadDaemonConfig(EXAMPLE);
  assert.equal(c.agent.tickIntervalMs, 10_000);
  assert.equal(c.metrics.listen, '127.0.0.1:9797');
  const text = readFileSync(EXAMPLE, 'utf8');
  const loader = readFileSync(join(root, 'src/config/agent.ts'), 'utf8');
  const keys = new Set(
    [...loader.matchAll(/\(\s*'(agent|backup|schedule|log|metrics)',\s*'([a-z_]+)'/g), ...loader.matchAll(/template\(\s*'([a-z_]+)'/g)].map(
      (m) => (m.length === 3 ? m[2] : m[1]) as string,
    ),
  );
  assert.ok(keys.size >= 15, [...keys].join(','));
  for (const k of keys) assert.match(text, new RegExp(`^;?${k} =`, 'm'), `${k} is documented`);
});

const hasTmpfiles = spawnSync('systemd-tmpfiles', ['--version'], { stdio: 'ignore' }).status === 0;

test(
  'tmpfiles entry creates the host lock directory for the service user and never cleans it',
  { skip: hasTmpfiles ? false : 'systemd-tmpfiles is not installed' },
  () => {
    const conf = join(root, 'systemd/spiderbackup.tmpfiles');
    const text = readFileSync(conf, 'utf8');
    assert.match(text, /^d \/run\/lock\/spiderbackup 0755 mysql mysql -$/m);
    // The real tool, into a private root (its users come from the root's /etc: the host's).
    const dir = mkdtempSync(join(tmpdir(), 'sb-tmpfiles-'));
    mkdirSync(join(dir, 'etc'));
    for (const f of ['passwd', 'group']) copyFileSync(`/etc/${f}`, join(dir, 'etc', f));
    const hasMysql = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .some((l) => l.startsWith('mysql:'));
    const r = spawnSync('systemd-tmpfiles', ['--create', `--root=${dir}`, conf], { encoding: 'utf8' });
    if (!hasMysql) return; // the mysql user comes with mariadb-server (scripts/install.sh)
    assert.equal(r.status, 0, r.stderr);
    const st = statSync(join(dir, 'run/lock/spiderbackup'));
    assert.ok(st.isDirectory());
    assert.equal(st.mode & 0o7777, 0o755);
  },
);
