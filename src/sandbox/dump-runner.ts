#!/usr/bin/env node
// The sandbox's backup command (a `command` runner): backs up one instance with mariadb-dump into
// <BackupDir>/<backup id>/<host>_<port>.sql.gz. Usage:
//   node dump-runner.js --config dbbackup.<port>.ini --backup-id ID
// Credentials go to mariadb-dump in a private defaults file, never on its command line; the dump
// is written to a .part file and renamed when complete, so a file with the final name is whole.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { loadInstanceConfig } from '../config/instance.js';
import { validateBackupId } from '../core/backup-id.js';
import { errorMessage } from '../errors.js';

const MARIADB_DUMP = process.env.MARIADB_DUMP ?? 'mariadb-dump';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, 'backup-id': { type: 'string' } }, strict: true });
  if (values.config === undefined || values['backup-id'] === undefined) {
    process.stderr.write('usage: dump-runner --config dbbackup.<port>.ini --backup-id ID\n');
    return 2;
  }
  const backupId = validateBackupId(values['backup-id'], '--backup-id');
  const inst = loadInstanceConfig(values.config);
  const backupDir = String((inst.sections.Public as Record<string, unknown> | undefined)?.BackupDir ?? '');
  if (backupDir === '') throw new Error(`${inst.file}: [Public] BackupDir is not set`);
  const outDir = join(backupDir, backupId);
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, `${inst.host}_${inst.port}.sql.gz`);

  const secrets = await mkdtemp(join(tmpdir(), 'sb-dump-'));
  try {
    const defaults = join(secrets, 'client.cnf');
    const cnf = `[client]\nhost=${inst.host}\nport=${inst.port}\nuser=${inst.user}\npassword="${inst.password.replace(/["\\]/g, '\\$&')}"\n`;
    await writeFile(defaults, cnf, { mode: 0o600 });
    const args = [
      `--defaults-file=${defaults}`, // first, as mariadb-dump requires
      '--protocol=TCP',
      '--all-databases',
      // A spider node's servers as CREATE SERVER statements; not the mysql schema's own tables.
      '--ignore-database=mysql',
      '--system=servers',
      '--single-transaction',
      '--routines',
      '--events',
    ];
    const dump = spawn(MARIADB_DUMP, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    // The agent stops a backup by signalling its process group; pass a TERM on all the same.
    process.once('SIGTERM', () => dump.kill('SIGTERM'));
    const exited = new Promise<number>((resolve, reject) => {
      dump.once('error', reject);
      dump.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    const part = `${out}.part`;
    await pipeline(dump.stdout, createGzip(), createWriteStream(part, { mode: 0o600 }));
    const code = await exited;
    if (code !== 0) {
      await rm(part, { force: true });
      process.stderr.write(`dump-runner: ${MARIADB_DUMP} exited with ${code}\n`);
      return code;
    }
    await rename(part, out);
    return 0;
  } finally {
    await rm(secrets, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`dump-runner: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
