import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, backoffDelayMs, BACKOFF } from '../../src/check/backoff.js';
import { buildLocalView, hostBusyReason } from '../../src/host/local-view.js';
import {
  hostPaths,
  lockedSupervisorArgv,
  parseSupervisorArgs,
  parseTaskMarker,
  recordFile,
  SUPERVISOR_EXIT,
  SUPERVISOR_MARK,
  supervisedTask,
  supervisorArgs,
  SupervisorUsageError,
  supervisorLockName,
  taskMarker,
  type SupervisorSpec,
} from '../../src/host/protocol.js';
import type { HostProcess, HostScan } from '../../src/host/host-scan.js';
import { legacyProgram, type HostProcess as Proc } from '../../src/host/host-scan.js';

const isLegacyBackup = (p: Proc): boolean => legacyProgram(p) !== undefined;

const spec = (backupId: string): SupervisorSpec => ({
  key: { backupId, host: '127.0.0.1', port: 20000, shardValue: 3 },
  instanceFile: '/etc/spiderbackup/conf.d/dbbackup.20000.ini',
  stateDir: '/var/lib/spiderbackup',
  hostLock: '/run/lock/spiderbackup/host.lock',
  cwd: '/home/mysql/dbbackup-go',
  logLevel: 'info',
  logFile: undefined,
  argv: ['/home/mysql/dbbackup-go/dbbackup', 'dumpbackup', '--backup-id', backupId, '--config', '-x'],
});

test('supervisor arguments round-trip for every id schedule accepts: non-ASCII, leading dash, dots', () => {
  for (const id of [
    'nightly-2026-11-25',
    '-starts-with-dash',
    '--backup-id',
    'ünïcødé-備份-ﾊﾞｯｸｱｯﾌﾟ-0123456789abcdef',
    'a.b_c',
    'x'.repeat(40),
  ]) {
    const s = spec(id);
    assert.deepEqual(parseSupervisorArgs(supervisorArgs(s)), s, id);
    // the command line as /proc shows it: node, script, mark, …
    const argv = lockedSupervisorArgv('/usr/bin/node', '/opt/sb/supervisor.js', s);
    assert.deepEqual(argv.slice(0, 6), [
      'flock',
      '--nonblock',
      '--no-fork',
      '--conflict-exit-code',
      String(SUPERVISOR_EXIT.hostBusy),
      s.hostLock,
    ]);
    assert.deepEqual(supervisedTask(argv.slice(6)), { key: s.key, hostLock: s.hostLock }, id);
    assert.deepEqual(parseTaskMarker(taskMarker(s.key)), s.key);
    assert.ok(supervisorLockName(s.key).length <= 64);
  }
});

test('supervisor arguments: a bad vector is a usage error naming the problem', () => {
  assert.throws(() => parseSupervisorArgs(['other']), SupervisorUsageError);
  assert.throws(() => parseSupervisorArgs([SUPERVISOR_MARK, '--backup-id=a', '--', 'x']), /--host is required/);
  const args = supervisorArgs(spec('a'));
  assert.throws(() => parseSupervisorArgs(args.map((a) => (a.startsWith('--port=') ? '--port=20x' : a))), /--port must be an integer/);
  assert.throws(() => parseSupervisorArgs(args.slice(0, args.indexOf('--'))), /no backup command/);
  // not a supervisor: the mark must be the word after node and the script
  assert.equal(supervisedTask(['/usr/bin/node', 'x.js', 'other', ...args]), undefined);
  assert.equal(supervisedTask(['/usr/bin/vi', ...args]), undefined);
  assert.equal(parseTaskMarker('not json'), undefined);
});

test('host paths sit beside the host lock; record files are safe names for any id', () => {
  assert.deepEqual(hostPaths('/run/lock/spiderbackup/host.lock'), {
    runLock: '/run/lock/spiderbackup/host.lock',
    daemonLock: '/run/lock/spiderbackup/host.daemon.lock',
    records: '/run/lock/spiderbackup/host.tasks',
  });
  const f = recordFile('/r', { backupId: '../../etc/passwd', host: 'h', port: 1, shardValue: 0 });
  assert.match(f, /^\/r\/1-[0-9a-f]{24}\.json$/);
});

const proc = (pid: number, over: Partial<HostProcess> = {}): HostProcess => ({ pid, ppid: 1, pgid: pid, argv: ['x'], ...over });
const scanOf = (ps: HostProcess[]): HostScan => ({ processes: ps, get: (pid) => ps.find((p) => p.pid === pid) });

const HOST = { hostLock: '/run/lock/spiderbackup/host.lock', installDir: '/home/mysql/dbbackup-go' };
// pids no process has: an unreadable working directory counts as "runs from install_dir"
const NO_PID = 999_999_000;

test('local view: a supervisor with a running record is restorable; a dead supervisor leaves an orphan; the old tool is seen', () => {
  const key = { backupId: 'b', host: 'h', port: 20000, shardValue: 0 };
  const other = { ...key, port: 20001 };
  const lock = HOST.hostLock;
  const scan = scanOf([
    proc(10, { supervises: key, hostLock: lock }),
    proc(11, { ppid: 10, task: key, hostLock: lock }),
    proc(20, { task: other, hostLock: lock }),
    proc(NO_PID, { argv: ['/home/mysql/dbbackup-go/dbbackup', 'dumpbackup', '--config', 'x'] }),
    // another simulated host's backup on the same machine is not ours
    proc(40, { supervises: { ...key, port: 30000 }, hostLock: '/tmp/other/host.lock' }),
  ]);
  const view = buildLocalView(
    scan,
    [
      { key, supervisorPid: 10, startedAt: '', phase: 'running' },
      { key: { ...key, backupId: 'old' }, supervisorPid: 5, startedAt: '', phase: 'running' },
    ],
    HOST,
  );
  assert.deepEqual(view.of(key), { kind: 'running', supervisorPid: 10, restorable: true, target: { supervisorPid: 10, pids: [11] } });
  assert.deepEqual(view.of(other), { kind: 'orphaned', target: { pids: [20] } });
  assert.deepEqual(view.of({ ...key, port: 1 }), { kind: 'none' });
  assert.deepEqual(view.of({ ...key, port: 30000 }), { kind: 'none' });
  assert.deepEqual(
    view.legacy.map((p) => p.pid),
    [NO_PID],
  );
  assert.deepEqual(
    view.stale.map((r) => r.key.backupId),
    ['old'],
  );
  assert.match(hostBusyReason(view) ?? '', /backup b@h:20000 runs \(supervisor pid 10\)/);
  const finishing = buildLocalView(scan, [{ key, supervisorPid: 10, startedAt: '', phase: 'finished', status: 'success' }], HOST);
  assert.equal(finishing.of(key).kind, 'finishing');
  assert.match(
    hostBusyReason(
      buildLocalView(scanOf([proc(NO_PID, { argv: ['sh', '/home/mysql/dbbackup-go/dbbackup_main.sh', '-k', 'x'] })]), [], HOST),
    ) ?? '',
    /old tool/,
  );
  assert.equal(hostBusyReason(buildLocalView(scanOf([proc(1)]), [], HOST)), undefined);
  // the old tool installed elsewhere is another host's (a simulated one): judged by its working directory
  const elsewhere = proc(process.pid, { argv: ['./dbbackup', 'dumpbackup'] });
  assert.deepEqual(buildLocalView(scanOf([elsewhere]), [], HOST).legacy, []);
  assert.equal(buildLocalView(scanOf([elsewhere]), [], { ...HOST, installDir: process.cwd() }).legacy.length, 1);
});

test("local view: a backup forked but not yet exec'd (it still shows its supervisor's command line) is not taken for the supervisor", () => {
  const key = { backupId: 'b', host: 'h', port: 20000, shardValue: 0 };
  const lock = HOST.hostLock;
  // The child has the higher pid: a view that kept the last claimant would repair TaskPid to it.
  const scan = scanOf([proc(10, { supervises: key, hostLock: lock }), proc(12, { ppid: 10, supervises: key, hostLock: lock })]);
  const view = buildLocalView(scan, [{ key, supervisorPid: 10, startedAt: '', phase: 'running' }], HOST);
  assert.deepEqual(view.of(key), { kind: 'running', supervisorPid: 10, restorable: true, target: { supervisorPid: 10, pids: [] } });
});

test('legacy backups: the old tool by its command line, never our own marked processes', () => {
  assert.ok(isLegacyBackup(proc(1, { argv: ['./dbbackup', 'spiderbackup', 'check', '--run'] })));
  assert.ok(isLegacyBackup(proc(1, { argv: ['/home/mysql/dbbackup-go/dbbackup', 'dumpbackup'] })));
  assert.ok(
    !isLegacyBackup(
      proc(1, { argv: ['/home/mysql/dbbackup-go/dbbackup', 'dumpbackup'], task: { backupId: 'b', host: 'h', port: 1, shardValue: 0 } }),
    ),
  );
  assert.ok(!isLegacyBackup(proc(1, { argv: ['./dbbackup', 'spiderbackup', 'schedule'] })));
  assert.ok(!isLegacyBackup(proc(1, { argv: ['vim', 'dbbackup.ini'] })));
});

test('backoff: 10 s doubling up to 10 min; a start clears it', () => {
  assert.deepEqual([1, 2, 3, 10, 100].map(backoffDelayMs), [10_000, 20_000, 40_000, BACKOFF.capMs, BACKOFF.capMs]);
  const b = new Backoff();
  assert.equal(b.waiting('k', 0), false);
  assert.equal(b.failed('k', 0), 10_000);
  assert.equal(b.waiting('k', 9_999), true);
  assert.equal(b.waiting('k', 10_000), false);
  assert.equal(b.failed('k', 10_000), 20_000);
  assert.equal(b.clear('k'), true);
  assert.equal(b.waiting('k', 10_001), false);
});
