// A mariadb-backup backup restored into the target's own datadir: unpacked and prepared in staging,
// the instance stopped with `[restore] stop_command`, its datadir emptied and the prepared copy
// copied back, then — before the real start — a throw-away mariadbd on the restored datadir (no
// network, no grant tables, no binlog) makes the agent's login again and drops the source's rows,
// then `[restore] start_command`, and the agent's login is waited for (bounded).
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import type { AgentConfig } from '../config/agent.js';
import { expandCommand } from '../config/command-template.js';
import type { InstanceConfig } from '../config/instance.js';
import { connect, type Queryable } from '../db/connect.js';
import { errorMessage, OperationError } from '../errors.js';
import { MariadbServer } from '../restore/mariadbd.js';
import { resolveUnder } from '../runner/paths.js';
import { DECOMPRESS_ARGV } from '../runner/tools.js';
import type { Manifest } from '../runner/manifest.js';
import { datadirOf } from '../sql/recovery.js';
import { dropSourceRows } from './after-load.js';
import { recreateLogin, type SavedLogin } from './login.js';
import { runCommand, runPipe } from './tools.js';
import type { RestoreRoute } from './job.js';
import { writeRoutes } from './spider-routes.js';

export class PhysicalRestoreError extends OperationError {
  override readonly name = 'PhysicalRestoreError';
}

export const START_WAIT_MS = 300_000;

/** Why a physical restore cannot run on this host, or undefined. */
export function physicalRefusal(config: Pick<AgentConfig, 'restore' | 'file'>): string | undefined {
  if (config.restore.stopCommand === undefined || config.restore.startCommand === undefined)
    return `a physical (mariadb-backup) restore replaces the datadir: set [restore] stop_command and start_command in ${config.file ?? 'the agent config'}`;
  return undefined;
}

export interface PhysicalSteps {
  config: Pick<AgentConfig, 'restore' | 'file' | 'backup'>;
  instance: InstanceConfig;
  manifest: Manifest;
  /** The fetched backup's directory. */
  fetched: string;
  staging: string;
  backupId: string;
  login: SavedLogin;
  /** A spider node: its task table is Spider's (left alone). */
  spider: boolean;
  /** A spider node's routes: written before anything starts on the restored mysql.servers. */
  routes?: readonly RestoreRoute[] | undefined;
  signal?: AbortSignal;
  log: (msg: string) => void;
  onBytes?: (total: number) => void;
}

export async function restorePhysical(db: Queryable, s: PhysicalSteps): Promise<void> {
  const refusal = physicalRefusal(s.config);
  if (refusal) throw new PhysicalRestoreError(refusal);
  const file = s.manifest.files[0];
  if (!file) throw new PhysicalRestoreError('the manifest lists no file');
  const unpacked = join(s.staging, 'prepared');
  mkdirSync(unpacked, { recursive: true });
  await runPipe(DECOMPRESS_ARGV.concat([resolveUnder(s.fetched, file.name)]), ['mbstream', '-x', '-C', unpacked], {
    ...(s.signal ? { signal: s.signal } : {}),
    ...(s.onBytes ? { onBytes: s.onBytes } : {}),
  });
  await runCommand(['mariadb-backup', '--no-defaults', '--prepare', `--target-dir=${unpacked}`], opt(s.signal));
  const datadir = (await datadirOf(db)).replace(/\/$/, '');
  if (datadir === '' || datadir === '/') throw new PhysicalRestoreError(`@@datadir is ${JSON.stringify(datadir)}: not replaced`);

  const values = {
    config: s.instance.file,
    backup_id: s.backupId,
    shard_value: String(s.instance.shardValue),
    port: String(s.instance.port),
    host: s.instance.host,
    install_dir: s.config.backup.installDir,
  };
  s.log(`stopping the instance with [restore] stop_command`);
  await runCommand(expandCommand(s.config.restore.stopCommand as string[], values), opt(s.signal)).catch((err: unknown) => {
    throw new PhysicalRestoreError(`[restore] stop_command: ${errorMessage(err)}`);
  });
  for (const name of readdirSync(datadir)) rmSync(join(datadir, name), { recursive: true, force: true });
  await runCommand(['mariadb-backup', '--no-defaults', '--copy-back', `--target-dir=${unpacked}`, `--datadir=${datadir}`], opt(s.signal));
  rmSync(unpacked, { recursive: true, force: true });

  await fixOffline(datadir, s);

  s.log(`starting the instance with [restore] start_command`);
  await runCommand(expandCommand(s.config.restore.startCommand as string[], values), opt(s.signal)).catch((err: unknown) => {
    throw new PhysicalRestoreError(`[restore] start_command: ${errorMessage(err)}`);
  });
  await waitForLogin(s.instance, s.signal);
}

/** The throw-away mariadbd on the restored datadir: the agent's login made again, the source's rows gone. */
async function fixOffline(datadir: string, s: PhysicalSteps): Promise<void> {
  const dir = join(s.staging, 'offline');
  mkdirSync(dir, { recursive: true });
  const server = new MariadbServer({
    dir,
    datadir,
    port: 0,
    serverId: 4_000_000_001,
    extraArgs: ['--skip-networking', '--skip-grant-tables', '--skip-log-bin', '--skip-slave-start', '--event-scheduler=OFF'],
  });
  await server.start();
  try {
    const conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', multipleStatements: false });
    try {
      const q: Queryable = { query: async (sql, params) => (await conn.query(sql, params))[0] };
      if (s.spider) await writeRoutes(q, s.routes ?? []);
      await recreateLogin(q, s.login);
      await dropSourceRows(q, s.instance, s.spider);
    } finally {
      await conn.end().catch(() => undefined);
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function waitForLogin(instance: InstanceConfig, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + START_WAIT_MS;
  let last = '';
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    try {
      const c = await connect(instance, { connectTimeoutMs: 5000 });
      await c.close();
      return;
    } catch (err) {
      last = errorMessage(err);
    }
    await delay(1000);
  }
  throw new PhysicalRestoreError(`the agent cannot log in after [restore] start_command within ${START_WAIT_MS / 1000} s: ${last}`);
}

const opt = (signal: AbortSignal | undefined) => (signal ? { signal } : {});
