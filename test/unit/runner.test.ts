// The built-in runner's pure parts: its command line, the tools' argument vectors, the positions
// read from their output, the option-file quoting, the backup paths, the manifest check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunnerArgs, roleOfWrapper, runnerArgs, RunnerUsageError, type RunnerSpec } from '../../src/runner/args.js';
import { optionValue, writeDefaultsFile } from '../../src/runner/defaults-file.js';
import { checkBackupDir, describeFile, writeManifest, type Manifest } from '../../src/runner/manifest.js';
import { backupPaths, RunnerError } from '../../src/runner/run-backup.js';
import { masterPositionFromBackupLog, positionFromBackupLog, positionFromDumpHead, toolArgv } from '../../src/runner/tools.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { backupArgv } from '../../src/host/start-task.js';

const spec: RunnerSpec = {
  tool: 'mariadb-dump',
  key: { backupId: '-odd.id', host: '10.0.0.1', port: 20000, shardValue: 3 },
  role: 'slave',
  instanceFile: '/etc/dbbackup/dbbackup.20000.ini',
};

test('runner arguments round-trip, an id starting with - stays a value; bad ones are usage errors', () => {
  assert.deepEqual(parseRunnerArgs(runnerArgs(spec)), spec);
  assert.throws(() => parseRunnerArgs(['x']), RunnerUsageError);
  assert.throws(() => parseRunnerArgs(runnerArgs({ ...spec, tool: 'tar' as never })), /--tool must be one of/);
  assert.throws(() => parseRunnerArgs(runnerArgs(spec).filter((a) => !a.startsWith('--port'))), /--port is required/);
  assert.equal(roleOfWrapper('SPIDER', false), 'spider');
  assert.equal(roleOfWrapper('mysql_slave', false), 'slave');
  assert.equal(roleOfWrapper('mysql', true), 'spider');
  assert.equal(roleOfWrapper(undefined, false), 'master');
});

test('[backup] runner picks our runner as the backup command, with no credential in it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-unit-'));
  try {
    const ini = join(dir, 'a.ini');
    writeFileSync(ini, '[backup]\nrunner = mariadb-backup\n');
    const config = loadAgentConfig(ini);
    assert.equal(config.backup.runner, 'mariadb-backup');
    const instance = { file: '/x/dbbackup.20000.ini', host: 'h', port: 20000, user: 'u', password: 'pw', role: 'master' } as never;
    const argv = backupArgv(config, instance, { backupId: 'b1', host: 'h', port: 20000, shardValue: 1, wrapper: 'mysql' });
    assert.equal(argv[0], process.execPath);
    assert.match(argv[1] as string, /bin\/runner\.js$/);
    assert.ok(argv.includes('--tool=mariadb-backup') && argv.includes('--backup-id=b1') && argv.includes('--role=master'));
    assert.ok(!argv.some((a) => a.includes('pw')));
    writeFileSync(ini, '[backup]\nrunner = xtrabackup\n');
    assert.throws(() => loadAgentConfig(ini), /runner = "xtrabackup": must be one of command, mariadb-backup, mariadb-dump/);
    writeFileSync(ini, '');
    assert.equal(loadAgentConfig(ini).backup.runner, 'command');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('tool argument vectors: defaults file first; position options by binlog and role', () => {
  const ctx = {
    defaultsFile: '/t/c.cnf',
    scratch: '/t',
    datadir: '/data/',
    role: 'master' as const,
    logBin: true,
    replica: false,
    spiderTables: [],
  };
  const dump = toolArgv('mariadb-dump', ctx);
  assert.equal(dump[1], '--defaults-file=/t/c.cnf');
  assert.ok(dump.includes('--master-data=2') && dump.includes('--single-transaction') && dump.includes('--gtid'));
  assert.ok(toolArgv('mariadb-dump', { ...ctx, logBin: false, replica: true }).includes('--dump-slave=2'));
  // A replica's dump records its master's position even when the replica writes a binlog.
  const replicaDump = toolArgv('mariadb-dump', { ...ctx, role: 'slave', replica: true });
  assert.ok(replicaDump.includes('--dump-slave=2') && !replicaDump.includes('--master-data=2'));
  assert.ok(toolArgv('mariadb-dump', { ...ctx, spiderTables: ['db.t'] }).includes('--ignore-table-data=db.t'));
  const backup = toolArgv('mariadb-backup', { ...ctx, replica: true });
  assert.equal(backup[1], '--defaults-file=/t/c.cnf');
  assert.ok(backup.includes('--stream=xbstream') && backup.includes('--datadir=/data/') && backup.includes('--slave-info'));
});

test('positions from mariadb-backup stderr and from a dump head', () => {
  assert.deepEqual(
    positionFromBackupLog(
      "[00] 2026-11-25 23:50:01 MySQL binlog position: filename 'mysql-bin.000002', position '1234', GTID of the last change '0-1-7'\n",
    ),
    { binlogFile: 'mysql-bin.000002', binlogPos: 1234, gtid: '0-1-7' },
  );
  assert.deepEqual(positionFromBackupLog('nothing'), {});
  assert.deepEqual(
    masterPositionFromBackupLog("[00] 2026-11-25 23:50:01 MySQL slave binlog position: master host '10.0.0.11', gtid_slave_pos 0-1-42\n"),
    { gtid: '0-1-42' },
  );
  assert.deepEqual(
    masterPositionFromBackupLog(
      "[00] 2026-11-26 00:12:54 MySQL slave binlog position: master '' filename 'mysql-bin.000007' position '385'\n",
    ),
    { binlogFile: 'mysql-bin.000007', binlogPos: 385 },
  );
  assert.deepEqual(masterPositionFromBackupLog('nothing'), {});
  const head =
    "-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n-- SET GLOBAL gtid_slave_pos='0-1-16';\n" +
    "-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4444;\n";
  assert.deepEqual(positionFromDumpHead(head), { binlogFile: 'mysql-bin.000001', binlogPos: 4444, gtid: '0-1-16' });
});

test('the defaults file quotes any password and is owner-only in an owner-only directory', () => {
  assert.equal(optionValue('a"b\\c#d;e'), '"a\\"b\\\\c#d;e"');
  const f = writeDefaultsFile({ host: '127.0.0.1', port: 3306, user: 'u', password: 'p"w#;' }, ['client', 'mariadb-backup']);
  try {
    assert.equal(statSync(f.path).mode & 0o777, 0o600);
    assert.equal(statSync(f.dir).mode & 0o777, 0o700);
    assert.doesNotMatch(f.dir, /spiderbackup/, 'signals sent by name to spiderbackup processes must not reach the tool');
    const text = readFileSync(f.path, 'utf8');
    assert.match(text, /^\[client\]\n/);
    assert.match(text, /\[mariadb-backup\]\n/);
    assert.match(text, /password="p\\"w#;"/);
  } finally {
    f.remove();
  }
});

test('backup paths: <BackupDir>/<id>/<host>_<port>, .partial beside it; an id of dots is refused', () => {
  assert.deepEqual(backupPaths('/bak', { backupId: 'b1', host: '10.0.0.1', port: 20000 }), {
    base: '/bak/b1',
    final: '/bak/b1/10.0.0.1_20000',
    partial: '/bak/b1/10.0.0.1_20000.partial',
  });
  assert.throws(() => backupPaths('/bak', { backupId: '..', host: 'h', port: 1 }), RunnerError);
});

test('a directory checks against its manifest: flipped byte, truncation, missing manifest, changed manifest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-unit-'));
  try {
    writeFileSync(join(dir, 'dump.sql.zst'), 'some bytes of a backup');
    const file = await describeFile(dir, 'dump.sql.zst');
    const m = { format: 1, backupId: 'b', files: [file], bytes: file.bytes } as unknown as Manifest;
    writeManifest(dir, m);
    const good = await checkBackupDir(dir);
    assert.equal(good.ok, true, good.problems.join());
    assert.equal((await checkBackupDir(dir, good.manifestSha256)).ok, true);
    assert.match((await checkBackupDir(dir, 'f'.repeat(64))).problems.join(), /differs from the published/);
    writeFileSync(join(dir, 'dump.sql.zst'), 'some bytes of a backuq');
    assert.match((await checkBackupDir(dir)).problems.join(), /sha256 mismatch/);
    writeFileSync(join(dir, 'dump.sql.zst'), 'some bytes');
    assert.match((await checkBackupDir(dir)).problems.join(), /10 bytes, manifest says 22/);
    rmSync(join(dir, 'manifest.json'));
    assert.match((await checkBackupDir(dir)).problems.join(), /manifest missing/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('resolveUnder: a path built from outside values stays strictly under its base', async () => {
  const { resolveUnder, PathEscapeError } = await import('../../src/runner/paths.js');
  assert.equal(resolveUnder('/b/dir', 'id', 'h_1'), '/b/dir/id/h_1');
  assert.equal(resolveUnder('/b/dir/', 'a/../c'), '/b/dir/c');
  for (const bad of [['..'], ['../x'], ['.'], ['/etc/shadow'], ['a', '../../x'], ['']])
    assert.throws(() => resolveUnder('/b/dir', ...bad), PathEscapeError, bad.join(','));
});
