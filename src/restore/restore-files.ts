// Restores one instance's backup into a throw-away local mariadbd (README "Restoring"), for
// `verify --restore-test` and whoever needs a restored copy: mariadb-backup: unpack, prepare,
// copy-back, start; mariadb-dump: fresh datadir, start, load. The caller gets a handle to query it
// and must close() it (stops the server, removes its directory).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveUnder } from '../runner/paths.js';
import mysql from 'mysql2/promise';
import type { Queryable } from '../db/connect.js';
import { installDatadir, MariadbServer } from './mariadbd.js';
import { checksumTable, userTables, type TableName } from '../sql/source-info.js';
import type { Manifest } from '../runner/manifest.js';
import { DECOMPRESS_ARGV } from '../runner/tools.js';

export class RestoreError extends Error {
  override readonly name = 'RestoreError';
}

export interface RestoredInstance {
  /** Private directory of the instance (data/, socket, error.log). */
  dir: string;
  socket: string;
  /** Root over the socket; grants are skipped, so the source's users do not matter. */
  db: Queryable;
  close(): Promise<void>;
}

/**
 * mariadbd options of the throw-away instance: no TCP port (nothing can reach it but the socket),
 * no grant tables (the restored mysql.* belongs to the source), no replication start (a replica's
 * backup carries its master's coordinates).
 */
const THROWAWAY_ARGS = ['--skip-networking', '--skip-grant-tables', '--skip-slave-start', '--event-scheduler=OFF'];

export async function restoreIntoThrowaway(backupDir: string, manifest: Manifest, workRoot = tmpdir()): Promise<RestoredInstance> {
  const dir = mkdtempSync(join(workRoot, 'sbrestore-'));
  const server = new MariadbServer({ dir, port: 0, serverId: 4_000_000_000, extraArgs: THROWAWAY_ARGS });
  let conn: mysql.Connection | undefined;
  const close = async () => {
    await conn?.end().catch(() => undefined);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const file = manifest.files[0];
    if (!file) throw new RestoreError(`${backupDir}: the manifest lists no file`);
    const data = resolveUnder(backupDir, file.name);
    if (manifest.tool.name === 'mariadb-backup') {
      const unpacked = join(dir, 'backup');
      mkdirSync(unpacked);
      await run(DECOMPRESS_ARGV.concat([data]), ['mbstream', '-x', '-C', unpacked]);
      await run(['mariadb-backup', '--no-defaults', '--prepare', `--target-dir=${unpacked}`]);
      await run(['mariadb-backup', '--no-defaults', '--copy-back', `--target-dir=${unpacked}`, `--datadir=${server.datadir}`]);
      rmSync(unpacked, { recursive: true, force: true });
      await server.start();
      conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', multipleStatements: false });
    } else if (manifest.tool.name === 'mariadb-dump') {
      await installDatadir(server.datadir, join(dir, 'tmp'));
      await server.start();
      // Opened before the load: the dump replaces mysql.* with the source's.
      conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', multipleStatements: false });
      await run(DECOMPRESS_ARGV.concat([data]), ['mariadb', '--no-defaults', `--socket=${server.socket}`, '--user=root', '--binary-mode']);
    } else {
      throw new RestoreError(`${backupDir}: tool ${JSON.stringify(manifest.tool.name)} is not one this restore knows`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  const c = conn;
  return {
    dir,
    socket: server.socket,
    db: {
      async query(sql: string, params?: unknown[]) {
        const [rows] = await c.query(sql, params);
        return rows;
      },
    },
    close,
  };
}

/**
 * Runs `first` (| `second`) with argument vectors, no shell; fails naming the command and its last
 * output lines.
 */
function run(first: string[], second?: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const a = spawn(first[0] as string, first.slice(1), { stdio: ['ignore', second ? 'pipe' : 'ignore', 'pipe'] });
    const b = second ? spawn(second[0] as string, second.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] }) : undefined;
    if (b && a.stdout && b.stdin) {
      a.stdout.pipe(b.stdin);
      b.stdin.on('error', () => undefined);
    }
    const wait = (child: typeof a, argv: string[]) =>
      new Promise<string | undefined>((res) => {
        let log = '';
        child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
        child.once('error', (err) => res(`${argv[0]}: ${err.message}`));
        child.once('close', (code, sig) => {
          res(code === 0 ? undefined : `${argv[0]} exited with ${code ?? sig}: ${log.trim().split('\n').slice(-3).join(' | ')}`);
        });
      });
    void Promise.all([wait(a, first), b && second ? wait(b, second) : Promise.resolve(undefined)]).then(([ea, eb]) => {
      if (ea || eb) reject(new RestoreError([ea, eb].filter(Boolean).join('; ')));
      else resolve();
    });
  });
}

export interface ChecksumComparison {
  tables: TableName[];
  /** One line per table that differs or is missing on either side. */
  differences: string[];
}

/** CHECKSUM TABLE of every user table, source against restored copy (see NOT_COMPARED). */
export async function compareChecksums(source: Queryable, restored: Queryable): Promise<ChecksumComparison> {
  const name = (t: TableName) => `${t.schema}.${t.table}`;
  const [src, dst] = await Promise.all([userTables(source), userTables(restored)]);
  const dstNames = new Set(dst.map(name));
  const srcNames = new Set(src.map(name));
  const differences: string[] = [];
  for (const t of dst) if (!srcNames.has(name(t))) differences.push(`${name(t)}: in the restored copy, not in the source`);
  for (const t of src) {
    if (!dstNames.has(name(t))) {
      differences.push(`${name(t)}: missing from the restored copy`);
      continue;
    }
    const [a, b] = await Promise.all([checksumTable(source, t), checksumTable(restored, t)]);
    if (a !== b) differences.push(`${name(t)}: CHECKSUM TABLE ${b} in the restored copy, ${a} in the source`);
  }
  return { tables: src, differences };
}
