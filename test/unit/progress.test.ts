// Progress of a running backup: the bytes under BackupDir written since it started, bounded walk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesWrittenSince, measuredDirOf } from '../../src/host/progress.js';
import { backupDirOf } from '../../src/config/instance.js';
import { formatBytes } from '../../src/format.js';
import { missingPrivilege } from '../../src/db/privileges.js';
import { ConfigError, InstanceError } from '../../src/errors.js';
import { progressText } from '../../src/cli/render/status-view.js';

test('only files written since the start count; older backups, links and directories do not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-progress-'));
  mkdirSync(join(dir, 'old'));
  writeFileSync(join(dir, 'old', 'a.sql'), Buffer.alloc(1000));
  const past = new Date(Date.now() - 3600_000);
  utimesSync(join(dir, 'old', 'a.sql'), past, past);
  const start = Date.now() - 1000;
  mkdirSync(join(dir, 'new', 'db1'), { recursive: true });
  writeFileSync(join(dir, 'new', 'db1', 't1.sql'), Buffer.alloc(300));
  writeFileSync(join(dir, 'new', 'meta'), Buffer.alloc(20));
  symlinkSync(join(dir, 'old', 'a.sql'), join(dir, 'new', 'link'));
  assert.deepEqual(await bytesWrittenSince(dir, start), { bytes: 320, truncated: false });
  assert.deepEqual(await bytesWrittenSince(join(dir, 'missing'), start), { bytes: 0, truncated: false });
});

test('the walk stops at its bounds and says the sum is a lower bound', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-progress-'));
  for (let i = 0; i < 10; i++) writeFileSync(join(dir, `f${i}`), Buffer.alloc(10));
  mkdirSync(join(dir, 'a', 'b', 'c'), { recursive: true });
  writeFileSync(join(dir, 'a', 'b', 'c', 'deep'), Buffer.alloc(5));
  const r = await bytesWrittenSince(dir, 0, { maxDepth: 10, maxEntries: 5 });
  assert.equal(r.truncated, true);
  assert.ok(r.bytes <= 50);
  const shallow = await bytesWrittenSince(dir, 0, { maxDepth: 2, maxEntries: 1000 });
  assert.deepEqual(shallow, { bytes: 100, truncated: true });
});

test('BackupDir is read from [Public] when absolute; sizes are printed for people', () => {
  const ini = (sections: Record<string, Record<string, unknown>>) => ({ file: '/etc/dbbackup.20000.ini', sections });
  assert.equal(backupDirOf(ini({ Public: { BackupDir: ' /data/dbbak ' } })), '/data/dbbak');
  assert.throws(() => backupDirOf(ini({ Public: { BackupDir: 'relative' } })), ConfigError);
  assert.throws(() => backupDirOf(ini({})), ConfigError);
  // Progress is measured only where BackupDir is usable; otherwise not at all.
  assert.equal(measuredDirOf(ini({ Public: { BackupDir: '/data/dbbak' } })), '/data/dbbak');
  assert.equal(measuredDirOf(ini({ Public: { BackupDir: 'relative' } })), undefined);
  assert.equal(measuredDirOf(ini({})), undefined);
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(300 * 1024 * 1024), '300 MiB');
});

test('a refused statement names the missing privilege and the feature that needs it', () => {
  const err = (code: string, sqlMessage: string) =>
    new InstanceError('127.0.0.1:20000', sqlMessage, code, { cause: Object.assign(new Error(sqlMessage), { code, sqlMessage }) });
  assert.equal(
    missingPrivilege(
      err(
        'ER_TABLEACCESS_DENIED_ERROR',
        "INSERT, UPDATE command denied to user 'sb'@'localhost' for table `infodba_schema`.`spiderbackup_presence`",
      ),
      'presence',
    ),
    "missing privilege INSERT, UPDATE on infodba_schema.spiderbackup_presence (needed for the agent's presence (infodba_schema.spiderbackup_presence))",
  );
  assert.match(
    missingPrivilege(
      err(
        'ER_SPECIFIC_ACCESS_DENIED_ERROR',
        'Access denied; you need (at least one of) the SUPER, BINLOG ADMIN privilege(s) for this operation',
      ),
      'purge',
    ) as string,
    /^missing privilege SUPER or BINLOG ADMIN \(needed for purging/,
  );
  assert.match(
    missingPrivilege(
      err('ER_OPTION_PREVENTS_STATEMENT', 'The MariaDB server is running with the --read-only option so it cannot execute this statement'),
      'presence',
    ) as string,
    /READ_ONLY ADMIN/,
  );
  assert.equal(missingPrivilege(err('ER_NO_SUCH_TABLE', "Table 'x.y' doesn't exist"), 'presence'), undefined);
  assert.equal(missingPrivilege(new Error('plain'), 'presence'), undefined);
});

test('host status shows the running backup with its bytes and average rate', () => {
  const inst = {
    port: 20000,
    host: '127.0.0.1',
    role: 'master',
    file: '/etc/x.ini',
    current: [],
    last: undefined,
    error: undefined,
    progress: { backupId: 'b1', startedAt: '2026-11-25T03:00:00.000Z', bytes: 600 * 1024 * 1024, bytesAt: '2026-11-25T03:00:10.000Z' },
  };
  assert.equal(progressText(inst, 'b1', 'running'), ', 600 MiB written, 60 MiB/s');
  assert.equal(progressText(inst, 'b2', 'running'), '');
  assert.equal(progressText(inst, 'b1', 'quit'), '');
  assert.equal(
    progressText({ ...inst, progress: { ...inst.progress, bytes: null, bytesAt: null } }, 'b1', 'running'),
    ', no bytes measured yet',
  );
});
