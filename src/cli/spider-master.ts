// `schedule [--wait]` and `query`: the spider-master commands.
import type { AgentConfig } from '../config/agent.js';
import { ClusterPool } from '../core/pool.js';
import { queryTasks } from '../core/query.js';
import { runSchedule } from '../core/schedule.js';
import { progressLine, unsuccessful, waitForBackup } from '../core/wait.js';
import type { Logger } from '../log.js';
import { print, renderJson, renderTable, type Format } from './output.js';

export async function scheduleCommand(
  config: AgentConfig,
  logger: Logger,
  opts: { files?: string[]; backupId?: string; wait: boolean },
): Promise<number> {
  // --wait reads through the spider session the schedule wrote through (its connections to the shards are open).
  const pool = new ClusterPool();
  try {
    return await scheduleAndWait(config, logger, opts, pool);
  } finally {
    await pool.close();
  }
}

async function scheduleAndWait(
  config: AgentConfig,
  logger: Logger,
  opts: { files?: string[]; backupId?: string; wait: boolean },
  pool: ClusterPool,
): Promise<number> {
  const res = await runSchedule({ config, logger, pool }, { files: opts.files, backupId: opts.backupId });
  if (res.kind === 'not-primary') {
    print(`${res.spider} is not the primary spider node (tdbctl get primary); nothing to do.`);
    return 0;
  }
  for (const t of res.createdTables) print(`created infodba_schema.global_backup on ${t}`);
  print(
    `scheduled backup id ${res.backupId}: ${res.tasks} tasks (1 spider, ${res.set.masters.length} shard masters, ` +
      `${res.tasks - 1 - res.set.masters.length} slaves)`,
  );
  if (!opts.wait) return 0;
  const result = await waitForBackup(
    {
      config,
      logger,
      pool,
      onRound: (r) => {
        print(`[${new Date().toISOString()}] ${res.backupId}: ${progressLine(r)}`);
        for (const v of r.views) if (v.problem) print(`  ${v.task.serverName} ${v.task.host}:${v.task.port}: ${v.problem}`);
        for (const e of r.errors) print(`  poll error: ${e}`);
      },
    },
    res.target,
    res.set,
    res.backupId,
  );
  if (result.ok) {
    print(`backup id ${res.backupId}: every task succeeded`);
    return 0;
  }
  const why = {
    finished: 'finished with failures',
    'too-many-failed-polls': 'gave up after too many failed polls',
    timeout: 'gave up after 48 h',
  }[result.reason];
  print(`backup id ${res.backupId}: ${why}; tasks not successful:`);
  print(
    renderTable(
      ['ServerName', 'Host', 'Port', 'ShardValue', 'BackupStatus'],
      unsuccessful(result.last).map((v) => [
        v.task.serverName,
        v.task.host,
        v.task.port,
        v.task.shardValue,
        v.row?.status ?? 'unknown (not readable)',
      ]),
    ),
  );
  return 1;
}

export async function queryCommand(
  config: AgentConfig,
  opts: { files?: string[]; backupId?: string; statuses?: string[]; format: Format },
): Promise<number> {
  const res = await queryTasks(config, opts);
  if (res.kind === 'not-primary') {
    print(`${res.spider} is not the primary spider node (tdbctl get primary); nothing to do.`);
    return 0;
  }
  const rows = res.tasks.map((t) => ({
    BackupId: t.backupId,
    ServerName: t.serverName,
    BackupStatus: t.status,
    Host: t.host,
    Port: t.port,
    ShardValue: t.shardValue,
    CreatedAt: t.createdAt,
  }));
  if (opts.format === 'json') print(renderJson(rows));
  else {
    print(
      renderTable(
        ['BackupId', 'ServerName', 'BackupStatus', 'Host', 'Port', 'ShardValue', 'CreatedAt'],
        rows.map((r) => Object.values(r)),
      ),
    );
    print(`${rows.length} rows`);
  }
  for (const e of res.errors) process.stderr.write(`spiderbackup: query: ${e}\n`);
  return res.errors.length === 0 ? 0 : 1;
}
