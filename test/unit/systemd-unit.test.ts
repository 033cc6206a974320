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
  // With "-": systemd applies ReadWritePaths to the "+" line too, and a missing path without "-"
  // fails the start (226/NAMESPACE) before that line can create the directory.
  assert.match(one('ReadWritePaths') ?? '', /(^| )-\/run\/lock\/spiderbackup( |$)/);
  // dbbackup writes its reports there; optional on a host without the old tool.
  assert.match(one('ReadWritePaths') ?? '', /(^| )-\/home\/mysql\/dbareport( |$)/);
  assert.match(one('ExecStartPre') ?? '', /^\+\/usr\/bin\/install -d -o mysql -g mysql -m 0755 \/run\/lock\/spiderbackup$/);
  assert.equal(d.get('RuntimeDirectory'), undefined, 'systemd would remove the host lock directory on stop');
  assert.match(one('ExecStart') ?? '', /^\/usr\/bin\/spiderbackup daemon --agent-config \/etc\/spiderbackup\/spiderbackup.ini$/);
  const stopS = Number(/^(\d+)s$/.exec(one('TimeoutStopSec') ?? '')?.[1]);
  assert.ok(stopS > 30, "longer than the daemon's 30 s wait for a tick in flight");
});

// The sandbox's score: `systemd-analyze security` rates every hardening directive (0 = locked
// down, 10 = none). The unit keeps what the agent and the backup tools need (network, /proc of
// every process, Node's JIT, …; each exception is explained in the unit) and scores at most 3.0.
const MAX_EXPOSURE = 3.0;

test(
  'systemd unit scores at most 3.0 in systemd-analyze security',
  { skip: hasSystemdAnalyze ? false : 'systemd-analyze is not installed' },
  (t) => {
    // Like verify: the copy runs the built CLI, so nothing depends on /usr/bin/spiderbackup.
    const dir = mkdtempSync(join(tmpdir(), 'sb-unit-'));
    const copy = join(dir, 'spiderbackup.service');
    writeFileSync(
      copy,
      readFileSync(UNIT, 'utf8').replace(/^ExecStart=\/usr\/bin\/spiderbackup /m, `ExecStart=${process.execPath} ${CLI} `),
    );
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', copy], { encoding: 'utf8' });
    const out = `${r.stdout}${r.stderr}`;
    if (/unrecognized option|unknown option/i.test(out)) {
      t.skip('this systemd-analyze has no --offline (systemd < 250)');
      return;
    }
    assert.equal(r.status, 0, out);
    const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(out);
    assert.ok(m, `no "Overall exposure level" line in:\n${out}`);
    const exposure = Number(m[1]);
    assert.ok(exposure <= MAX_EXPOSURE, `exposure ${exposure} > ${MAX_EXPOSURE}:\n${out}`);
    // The agent scans /proc for every process of the host: the analyzer must see both unset.
    assert.match(out, /✗ ProtectProc=/, out);
    assert.match(out, /✗ ProcSubset=/, out);
  },
);

test('systemd unit leaves the agent every process of the host and what the backup tools need', () => {
  const d = directives(readFileSync(UNIT, 'utf8'));
  // /proc of every process (cmdline, environ, stat of backups, supervisors, the old tool).
  assert.equal(d.get('ProtectProc'), undefined, 'ProtectProc hides processes from the host scan');
  assert.equal(d.get('ProcSubset'), undefined, 'ProcSubset=pid would hide /proc files the tools read');
  // Supervisors and backups outlive the daemon in the previous start's sandbox.
  assert.equal(d.get('PrivateUsers'), undefined, 'a user namespace per start');
  assert.equal(d.get('RemoveIPC'), undefined, "would remove mysqld's IPC objects (same user) on stop");
  assert.equal(d.get('MemoryDenyWriteExecute'), undefined, "Node's JIT needs writable+executable memory");
  assert.equal(d.get('PrivateNetwork'), undefined, 'MySQL instances over TCP');
  assert.deepEqual(d.get('CapabilityBoundingSet'), [''], 'no capabilities');
  const families = (d.get('RestrictAddressFamilies') ?? []).join(' ').split(' ');
  for (const f of ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK']) assert.ok(families.includes(f), f);
  assert.match((d.get('SystemCallFilter') ?? []).join(' '), /(^| )@system-service( |$)/);
  assert.deepEqual(d.get('SystemCallErrorNumber'), ['EPERM'], 'a refused call fails, it does not kill the backup');
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
