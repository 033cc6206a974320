// The pure parts of writing backups into the repository: which earlier attempts of an instance are
// cleared, the runner's progress lines, the files a backup command created, and the agent config
// reference on the runner's and the supervisor's command lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { earlierAttempts } from '../../src/runner/repo-write.js';
import { progressLine, progressReader } from '../../src/host/progress.js';
import { filesCreatedSince, filesUnder } from '../../src/host/command-upload.js';
import { parseRunnerArgs, runnerArgs, type RunnerSpec } from '../../src/runner/args.js';
import { parseSupervisorArgs, supervisorArgs, type SupervisorSpec } from '../../src/host/protocol.js';
import type { TaskRow } from '../../src/task/task.js';

const row = (backupId: string, status: string, port = 20000): TaskRow => ({
  backupId,
  host: '10.0.0.1',
  port,
  shardValue: 1,
  serverName: 'SPT1',
  wrapper: 'mysql',
  status,
  taskPid: 1,
  createdAt: '',
  updatedAt: '',
  createdAgeS: 0,
  updatedAgeS: 0,
});

test('earlier attempts: the failed ones since the last success, not the current one, not one still quitting', () => {
  const tasks = [
    row('old-failed', 'failed: exit code 1'),
    row('good', 'success'),
    row('killed', 'failed: supervisor died'),
    row('quitting', 'quit'),
    row('quit-done', 'quit: success'),
    row('waiting', 'init'),
    row('other-port', 'failed: exit code 1', 20001),
    row('../escape', 'failed: exit code 1'),
    row('now', 'running'),
  ];
  const current = { backupId: 'now', host: '10.0.0.1', port: 20000, shardValue: 1 };
  assert.deepEqual(earlierAttempts(tasks, current), ['killed', 'quit-done']);
  assert.deepEqual(earlierAttempts([row('now', 'failed: timeout')], current), []);
});

test('progress lines: the last count told wins, split lines and other output are borne', () => {
  const r = progressReader();
  assert.equal(r.latest(), undefined);
  r.feed(Buffer.from(`${progressLine(10)}sto`));
  assert.equal(r.latest(), 10);
  r.feed(Buffer.from('red 2048\nnoise\n'));
  assert.equal(r.latest(), 2048);
});

test("a backup command's files: new regular files since the start, not older ones, not links", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-created-'));
  try {
    mkdirSync(join(dir, 'old'));
    writeFileSync(join(dir, 'old', 'a.tar'), 'old');
    const before = await filesUnder(dir);
    assert.deepEqual([...before], [join('old', 'a.tar')]);
    const start = Date.now();
    mkdirSync(join(dir, 'id1'));
    writeFileSync(join(dir, 'id1', 'b.tar'), 'new');
    // An old mtime (copied with -p) does not hide a new file: its ctime is now.
    writeFileSync(join(dir, 'id1', 'c.index'), 'new');
    utimesSync(join(dir, 'id1', 'c.index'), new Date(0), new Date(0));
    symlinkSync(join(dir, 'old', 'a.tar'), join(dir, 'id1', 'link'));
    // A file that was there is not the backup's even when rewritten.
    writeFileSync(join(dir, 'old', 'a.tar'), 'rewritten');
    const created = await filesCreatedSince(dir, before, start);
    assert.deepEqual(
      created.map((f) => f.name),
      ['id1/b.tar', 'id1/c.index'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the agent config reference round-trips on the runner and supervisor command lines; absent without a repository', () => {
  const spec: RunnerSpec = {
    tool: 'mariadb-backup',
    key: { backupId: 'b1', host: '10.0.0.1', port: 20000, shardValue: 1 },
    role: 'master',
    instanceFile: '/etc/dbbackup/dbbackup.20000.ini',
  };
  assert.ok(!runnerArgs(spec).some((a) => a.startsWith('--agent-')));
  const withRepo = { ...spec, repository: { file: '/etc/spiderbackup/agent.ini', cwd: '/' } };
  assert.deepEqual(parseRunnerArgs(runnerArgs(withRepo)), withRepo);
  const sup: SupervisorSpec = {
    key: spec.key,
    instanceFile: spec.instanceFile,
    stateDir: '/var/lib/spiderbackup',
    hostLock: '/run/lock/spiderbackup/host.lock',
    cwd: undefined,
    logLevel: 'info',
    logFile: undefined,
    argv: ['/bin/true'],
  };
  assert.ok(!supervisorArgs(sup).some((a) => a.startsWith('--agent-')));
  const supRepo = { ...sup, repository: { file: '/etc/spiderbackup/agent.ini', cwd: '/srv' } };
  assert.deepEqual(parseSupervisorArgs(supervisorArgs(supRepo)), supRepo);
});
