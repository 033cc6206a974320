// Issue 20, the target side: real agents carry out the restore tasks `spiderbackup restore` writes
// into the repository (written here by the test, as the command will). A source cluster (2 shards,
// a replica of shard 0, a posix repository, the built-in mariadb-dump runner, the binlog archive)
// under the cross-shard transfer workload: backup, point, archive. A bare target cluster on other
// loopback addresses, served by two agents: both shard masters and the replica restored to the
// point, then the spider node routed to them: the transfer invariant holds through it, each
// shard's content equals `verify --restore-test` of the same point, the replica replicates from
// its new master with no errant GTID, and the spider node's mysql.servers names only target
// addresses. Then a worker and its daemon killed mid-task: the restarted daemon reports it failed
// ("died"), and a next attempt of the task is done. Last, a physical (mariadb-backup) restore of one
// shard, the instance stopped and started by `[restore]` commands (test/support/instance-ctl.sh).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { loadAgentConfig } from '../src/config/agent.js';
import { configuredRepository } from '../src/repo/agent-repository.js';
import type { Repository } from '../src/repo/repository.js';
import { covers, parseGtidPos } from '../src/archive/gtid.js';
import { restorePlanFromRepository } from '../src/restore/repo-plan.js';
import { readRepoManifest } from '../src/restore/repo-files.js';
import { restoreToPoint } from '../src/restore/to-point.js';
import {
  document,
  instanceName,
  openKey,
  readDocument,
  recordKey,
  stateKey,
  taskKey,
  type Address,
  type RestoreRecord,
  type RestoreRoute,
  type RestoreTaskSpec,
  type RestoreTaskState,
} from '../src/recovery/job.js';
import { ADMIN_PASSWORD, ADMIN_USER, type Instance } from '../src/sandbox/cluster.js';
import { latestLocalStates } from '../src/recovery/local-state.js';
import { isWorkerOf } from '../src/recovery/worker-args.js';
import { commandLineOf } from '../src/host/processes.js';
import type { ClusterWorkspace, TestCluster } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { bankTotal, setupBank, startTransfers, type Transfers } from './support/transfer-workload.js';
import { waitFor } from './support/workspace.js';
import { archiveBinlogs } from './support/archive.js';
import { posixRepository, setUpSource, setUpTargets, writePasswordFile } from './support/restore-clusters.js';

const PREFIX = 'rr';
const BACKUP = 'gr1';
const POINT = 'pr1';
/** A content fingerprint of a shard's part of the bank (CHECKSUM TABLE is not a first column). */
const FINGERPRINT = "SELECT CONCAT(COUNT(*), ':', SUM(balance), ':', BIT_XOR(CRC32(CONCAT(id, ':', balance)))) FROM bank.acct";

let source: TestCluster<'src'>;
let target: TestCluster<'ta' | 'tb'>;
let srcWs: ClusterWorkspace;
let repoDir: string;
let secrets: string;
let passwordFile: string;
let repo: Repository;
let transfers: Transfers | undefined;
const daemons: DaemonProcess[] = [];
let lockHolder: ChildProcess | undefined;
/** Instances the physical restore restarted outside the harness: killed before the cluster closes. */
const restarted: string[] = [];

before(async () => {
  repoDir = mkdtempSync(join(tmpdir(), 'sb-repo-recovery-'));
  secrets = mkdtempSync(join(tmpdir(), 'sb-recovery-secrets-'));
  passwordFile = writePasswordFile(secrets, 'admin.pw');
  const repository = posixRepository(repoDir, PREFIX);
  source = await setUpSource({
    slaves: [0],
    config: { repository },
    workspaces: {
      src: {
        serves: ['spider0', 'master0', 'master1', 'slave0'],
        config: { backup: { runner: 'mariadb-dump' }, archive: { binlogs: 'off' } },
      },
    },
  });
  srcWs = source.workspaces.src;
  target = await setUpTargets(20, {
    slaves: [0],
    bare: true,
    // The target's agents never archive into the source's archive.
    config: { repository, archive: { binlogs: 'off' } },
    workspaces: { ta: { serves: ['master0', 'spider0'] }, tb: { serves: ['master1', 'slave0'] } },
  });
  const r = await configuredRepository(loadAgentConfig(srcWs.agentIni));
  assert.ok(r);
  repo = r;
  await setupBank(source);
  await source.waitReplicated();
});

after(async () => {
  await transfers?.stop().catch(() => {});
  lockHolder?.kill('SIGKILL');
  for (const d of daemons) await d.dispose().catch(() => {});
  // A worker still running (a test that failed mid-task) goes with its process group.
  for (const ws of target ? Object.values<ClusterWorkspace>(target.workspaces) : [])
    for (const st of latestLocalStates(ws.stateDir))
      if (isWorkerOf(commandLineOf(st.agent.pid), st))
        try {
          process.kill(-st.agent.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
  for (const dir of restarted) {
    try {
      process.kill(Number(readFileSync(join(dir, 'harness.pid'), 'utf8').trim()), 'SIGKILL');
    } catch {
      // not started, or gone
    }
  }
  await target?.close();
  await source?.close();
  for (const dir of [repoDir, secrets]) if (dir) rmSync(dir, { recursive: true, force: true });
});

const addr = (i: Instance): Address => ({ host: i.host, port: i.port });

async function backupAndPoint(backupId = BACKUP, pointName = POINT): Promise<void> {
  const spiderIni = srcWs.dropIn(source.spider);
  transfers = await startTransfers(source, 4);
  try {
    await waitFor('transfers under way', () => transfers!.committed() > 50, 120_000);
    const s = await srcWs.cli('schedule', '-c', spiderIni, `--backup-id=${backupId}`, '--no-restore-point');
    assert.equal(s.code, 0, s.stderr);
    await source.waitReplicated();
    const run = await srcWs.cli('check', '--run');
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    let n = transfers.committed();
    await waitFor('transfers after the backup', () => transfers!.committed() > n + 100, 120_000);
    const p = await srcWs.cli('restore-point', pointName, '-c', spiderIni, '--format', 'json');
    assert.equal(p.code, 0, p.stderr);
    // As the daemon records every point: its JSON in <prefix>/points/.
    mkdirSync(join(repoDir, PREFIX, 'points'), { recursive: true });
    writeFileSync(join(repoDir, PREFIX, 'points', `${pointName}.json`), p.stdout);
    n = transfers.committed();
    await waitFor('transfers after the point', () => transfers!.committed() > n + 50, 120_000);
  } finally {
    const stats = await transfers.stop();
    transfers = undefined;
    process.stdout.write(`# transfers committed ${stats.committed}, failed ${stats.failed}\n`);
  }
  await archiveBinlogs(source, repo);
}

/** The task specs of the shards, as the command derives them from the plan. */
async function shardSpecs(restoreId: string, backupId = BACKUP, pointName = POINT): Promise<RestoreTaskSpec[]> {
  const plan = await restorePlanFromRepository(repo, { backupId, pointName, repo }, 'the test reads the repository alone');
  assert.deepEqual(plan.problems, []);
  const specs: RestoreTaskSpec[] = [];
  for (const p of plan.shards) {
    assert.ok(p.backup && p.published && p.backupGtid !== undefined && p.archiveRuns, JSON.stringify(p));
    const base = {
      format: 1 as const,
      restoreId,
      shard: p.shard.shardValue,
      attempt: 1,
      source: {
        host: p.backup.host,
        port: p.backup.port,
        backupId,
        serverName: p.backup.serverName,
        tool: p.published.tool,
        manifestSha256: p.published.manifestSha256,
      },
      fromGtid: p.backupGtid,
      toGtid: p.shard.gtid,
      archiveRuns: p.archiveRuns,
      scratch: false,
    };
    const master = target.masters[p.shard.shardValue]!;
    specs.push({ ...base, target: addr(master), role: 'master' });
    for (const s of target.slaves.filter((x) => target.masterOf(x) === master))
      specs.push({ ...base, target: addr(s), role: 'replica', replicateFrom: { ...addr(master), user: ADMIN_USER, passwordFile } });
  }
  return specs;
}

async function writeTask(spec: RestoreTaskSpec): Promise<void> {
  await repo.store.putObject(taskKey(repo, spec.restoreId, spec.target), document(spec));
}

async function openRestore(restoreId: string, targets: Address[]): Promise<void> {
  const record: RestoreRecord = {
    format: 1,
    restoreId,
    createdAt: new Date().toISOString(),
    createdBy: 'test',
    backupId: BACKUP,
    point: { name: POINT, takenAt: '' },
    targets,
  };
  await repo.store.putObject(recordKey(repo, restoreId), document(record));
  await repo.store.putObject(openKey(repo, restoreId), Buffer.from(''));
}

const stateOf = (restoreId: string, a: Address) => readDocument<RestoreTaskState>(repo, stateKey(repo, restoreId, a));

async function waitDone(restoreId: string, a: Address, attempt = 1, timeoutMs = 240_000): Promise<RestoreTaskState> {
  let last: RestoreTaskState | undefined;
  try {
    await waitFor(
      `restore task ${instanceName(a)} done`,
      async () => {
        last = await stateOf(restoreId, a);
        if (last?.attempt === attempt && last.phase === 'failed') throw new Error(`task ${instanceName(a)} failed: ${last.error}`);
        return last?.attempt === attempt && last.phase === 'done';
      },
      timeoutMs,
    );
  } catch (err) {
    // What the agents said about it, for whoever reads the failure.
    const said = daemons.flatMap((d) => d.lines.filter((l) => l.target === `${a.host}:${a.port}` || l.restoreId === restoreId));
    throw new Error(`${(err as Error).message}; last state ${JSON.stringify(last)}; log: ${said.map((l) => JSON.stringify(l)).join('\n')}`);
  }
  return last!;
}

function startDaemon(ws: ClusterWorkspace): DaemonProcess {
  const d = new DaemonProcess(ws);
  daemons.push(d);
  return d;
}

async function firstValue(inst: Instance, sql: string, cluster: TestCluster<never> | TestCluster<'ta' | 'tb'>): Promise<string> {
  const [row] = await cluster.query<Record<string, unknown>>(inst, sql);
  return String(Object.values(row ?? {})[0]);
}

describe('the agents carry out a whole-cluster restore', { timeout: 600_000 }, () => {
  const R1 = 'r-20261205-000001';

  test('shard masters, a replica and the spider node restored to the point onto a bare cluster', async () => {
    await backupAndPoint();
    const specs = await shardSpecs(R1);
    assert.equal(specs.length, 3);
    await openRestore(R1, target.all().map(addr));
    for (const s of specs) await writeTask(s);
    const ta = startDaemon(target.workspaces.ta);
    const tb = startDaemon(target.workspaces.tb);
    await Promise.all([ta.ready(), tb.ready()]);

    const states = await Promise.all(specs.map((s) => waitDone(R1, s.target)));
    for (const [i, st] of states.entries()) {
      const spec = specs[i]!;
      // A master's binlog ends at the point itself (its agent's own writes waited); a replica's
      // gtid_slave_pos may have moved on with its master already.
      if (spec.role === 'master') assert.equal(st.gtid, spec.toGtid, `master ${instanceName(spec.target)}`);
      else assert.ok(covers(parseGtidPos(st.gtid ?? ''), parseGtidPos(spec.toGtid)), `${spec.role} ${st.gtid} reaches ${spec.toGtid}`);
      assert.deepEqual(
        st.phases.map((p) => p.phase),
        ['claimed', 'fetch', 'load', 'replay', 'done'],
      );
      assert.ok((st.phases.find((p) => p.phase === 'fetch')?.bytes ?? 0) > 0, JSON.stringify(st.phases));
      assert.ok((st.phases.find((p) => p.phase === 'load')?.bytes ?? 0) > 0, JSON.stringify(st.phases));
      assert.ok(st.phases.every((p) => p.endedAt !== undefined));
    }
    // A restored master's binlog ends at the point: its GTIDs are the source's.
    for (const [i, m] of target.masters.entries()) {
      const pos = await firstValue(m, 'SELECT @@gtid_binlog_pos', target);
      const spec = specs.find((s) => s.role === 'master' && s.shard === i)!;
      assert.ok(covers(parseGtidPos(pos), parseGtidPos(spec.toGtid)), `${m.name}: ${pos} vs ${spec.toGtid}`);
    }

    // The spider node only once every shard reached the point.
    const spiderSrc = source.spider;
    const manifest = await readRepoManifest(repo, BACKUP, spiderSrc.host, spiderSrc.port);
    assert.ok(manifest);
    const route = (name: string, i: Instance, wrapper: RestoreRoute['wrapper']): RestoreRoute => ({
      name,
      ...addr(i),
      wrapper,
      user: ADMIN_USER,
      passwordFile,
    });
    const spiderSpec: RestoreTaskSpec = {
      format: 1,
      restoreId: R1,
      target: addr(target.spider),
      role: 'spider',
      shard: 0,
      attempt: 1,
      source: {
        ...addr(spiderSrc),
        backupId: BACKUP,
        serverName: 'SPIDER0',
        tool: manifest.manifest.tool.name,
        manifestSha256: manifest.sha256,
      },
      fromGtid: '',
      toGtid: '',
      archiveRuns: [],
      routes: [
        ...target.masters.map((m, i) => route(`SPT${i}`, m, 'mysql')),
        ...target.slaves.map((s) => route(`SPT_SLAVE${s.shardValue}`, s, 'mysql_slave')),
        route('SPIDER0', target.spider, 'SPIDER'),
      ],
      scratch: false,
    };
    await writeTask(spiderSpec);
    const sp = await waitDone(R1, spiderSpec.target);
    assert.deepEqual(
      sp.phases.map((p) => p.phase),
      ['claimed', 'fetch', 'load', 'route', 'done'],
    );
    assert.equal(sp.gtid, '');

    // Through the new spider node: the invariant.
    assert.equal(Number(await firstValue(target.spider, 'SELECT SUM(balance) FROM bank.acct', target)), bankTotal());
    // Its routes name only target addresses.
    const servers = await target.query<{ Server_name: string; Host: string; Port: number }>(
      target.spider,
      'SELECT Server_name, Host, Port FROM mysql.servers ORDER BY Server_name',
    );
    const targets = new Set(target.all().map((i) => `${i.host}:${i.port}`));
    assert.deepEqual(
      servers.map((s) => s.Server_name),
      ['SPIDER0', 'SPT0', 'SPT1', 'SPT_SLAVE0'],
    );
    for (const s of servers) assert.ok(targets.has(`${s.Host}:${s.Port}`), `${s.Server_name} routes to ${s.Host}:${s.Port}`);

    // Each shard equals `verify --restore-test` of the same point.
    const verified = await restoreToPoint(loadAgentConfig(srcWs.agentIni), undefined, {
      backupId: BACKUP,
      pointName: POINT,
      unreachable: 'the test reads the repository alone',
      repo,
      checkSql: FINGERPRINT,
    });
    assert.equal(verified.kind, 'restored', JSON.stringify(verified.kind === 'refused' ? verified.problems : ''));
    if (verified.kind !== 'restored') return;
    for (const [i, m] of target.masters.entries()) {
      const want: string | null | undefined = verified.shards.find((s) => s.label.endsWith(`shard ${i}`))?.check;
      assert.equal(await firstValue(m, FINGERPRINT, target), want, `shard ${i}`);
    }
    // The source's task rows and agents' presence are not the new cluster's.
    for (const m of target.masters)
      assert.equal(Number(await firstValue(m, 'SELECT COUNT(*) FROM infodba_schema.global_backup', target)), 0, m.name);

    // The replica follows its new master: a write arrives, replication runs, no errant GTID.
    const master0 = target.masters[0]!;
    const replica = target.slaves[0]!;
    await target.exec(master0, 'INSERT INTO bank.acct (id, balance) VALUES (100000, 0)');
    await target.waitReplicated(60_000);
    assert.equal(Number(await firstValue(replica, 'SELECT COUNT(*) FROM bank.acct WHERE id = 100000', target)), 1);
    const [status] = await target.query<{ Slave_IO_Running: string; Slave_SQL_Running: string; Using_Gtid: string; Master_Host: string }>(
      replica,
      'SHOW SLAVE STATUS',
    );
    assert.equal(status?.Slave_IO_Running, 'Yes');
    assert.equal(status?.Slave_SQL_Running, 'Yes');
    assert.equal(status?.Using_Gtid, 'Slave_Pos');
    assert.equal(status?.Master_Host, master0.host);
    const masterPos = await firstValue(master0, 'SELECT @@gtid_binlog_pos', target);
    const replicaOwn = await firstValue(replica, 'SELECT @@gtid_binlog_pos', target);
    assert.ok(
      covers(parseGtidPos(masterPos), parseGtidPos(replicaOwn)),
      `errant GTID on the replica: ${replicaOwn} vs master ${masterPos}`,
    );
    assert.equal(await firstValue(master0, FINGERPRINT, target), await firstValue(replica, FINGERPRINT, target));

    // The hosts' own copies, and `status`.
    const st = await target.workspaces.ta.cli('status');
    assert.match(st.stdout, new RegExp(`Restore: +${R1} on ${master0.host}:${master0.port} \\(attempt 1\\): done after`));
    assert.match(st.stdout, new RegExp(`Restore: +${R1} on ${target.spider.host}:${target.spider.port} \\(attempt 1\\): done`));
    assert.deepEqual(readdirSync(join(target.workspaces.ta.stateDir, 'restores', R1)).sort(), [
      `${instanceName(master0)}.json`,
      `${instanceName(target.spider)}.json`,
    ]);
    // Nothing left in staging.
    assert.deepEqual(readdirSync(join(target.workspaces.ta.stateDir, 'restore-staging')), []);
  });

  test('a worker and its daemon killed mid-task: the restarted daemon reports it failed, the next attempt is done', async () => {
    const R2 = 'r-20261205-000002';
    const ws = target.workspaces.tb;
    const master1 = target.masters[1]!;
    const spec = { ...(await shardSpecs(R2)).find((s) => s.role === 'master' && s.shard === 1)!, scratch: true };

    // Without "scratch": true, a target holding data (the first restore's) is refused, its schemas named.
    const R2a = 'r-20261205-00002a';
    await openRestore(R2a, [addr(master1)]);
    await writeTask({ ...spec, restoreId: R2a, scratch: false });
    const refused = await waitFor('refused', async () => {
      const s = await stateOf(R2a, spec.target);
      return s?.phase === 'failed' ? s : undefined;
    });
    assert.match(
      refused.error ?? '',
      new RegExp(`^${master1.host}:${master1.port}: before the fetch: the target is not empty: it holds bank \\(only mysql`),
    );
    assert.equal(Number(await firstValue(master1, 'SELECT COUNT(*) FROM bank.acct', target)), 200, 'nothing was touched');
    await repo.store.remove([openKey(repo, R2a)]);

    // This host's lock held: the worker claims and waits, heartbeat going.
    mkdirSync(join(ws.hostLock, '..'), { recursive: true });
    lockHolder = spawn('flock', ['--no-fork', ws.hostLock, 'cat'], { stdio: ['pipe', 'ignore', 'ignore'] });
    await waitFor('the test holds the host lock', () => {
      try {
        return readFileSync(`/proc/${lockHolder!.pid}/comm`, 'utf8').trim() === 'cat';
      } catch {
        return false;
      }
    });
    await openRestore(R2, [addr(master1)]);
    await writeTask(spec);
    const claimed = await waitFor('claimed', async () => {
      const s = await stateOf(R2, spec.target);
      return s?.phase === 'claimed' ? s : undefined;
    });
    const tb = daemons.find((d) => d.ws === ws)!;
    // The worker's log lines go where the daemon's do (its stdout, when there is no [log] file).
    await tb.waitLog((l) => /waiting for the host lock/.test(l.msg) && l.restoreId === R2, 60_000);
    process.kill(claimed.agent.pid, 'SIGKILL');
    tb.signal('SIGKILL');
    await tb.exited;
    lockHolder.kill('SIGKILL');
    lockHolder = undefined;

    const again = startDaemon(ws);
    await again.ready();
    const failed = await waitFor('reported failed', async () => {
      const s = await stateOf(R2, spec.target);
      return s?.phase === 'failed' ? s : undefined;
    });
    assert.match(
      failed.error ?? '',
      new RegExp(`${master1.host}:${master1.port}: its worker \\(pid ${claimed.agent.pid} on \\S+\\) died in phase claimed`),
    );
    assert.match(failed.error ?? '', /restore --resume/);
    await again.waitLog('restore task lost: reported failed');

    await writeTask({ ...spec, attempt: 2 });
    const done = await waitDone(R2, spec.target, 2);
    assert.ok(covers(parseGtidPos(done.gtid ?? ''), parseGtidPos(spec.toGtid)));
    const st = await ws.cli('status');
    assert.match(st.stdout, new RegExp(`Restore: +${R2} on ${master1.host}:${master1.port} \\(attempt 2\\): done`));
  });

  test('a physical (mariadb-backup) restore: the instance stopped, its datadir replaced, started again; the agent can log in', async () => {
    const R3 = 'r-20261205-000003';
    const ws = target.workspaces.tb;
    const master1 = target.masters[1]!;
    const repository = { type: 'posix', path: repoDir, prefix: PREFIX };
    srcWs.writeAgentConfig({ repository, backup: { runner: 'mariadb-backup' }, archive: { binlogs: 'off' } });
    await backupAndPoint('gp1', 'pp1');
    const spec = { ...(await shardSpecs(R3, 'gp1', 'pp1')).find((s) => s.role === 'master' && s.shard === 1)!, scratch: true };
    assert.equal(spec.source.tool, 'mariadb-backup');
    const datadirBefore = await firstValue(master1, 'SELECT @@datadir', target);

    if (!daemons.some((d) => d.ws === ws && d.child.exitCode === null && d.child.signalCode === null)) await startDaemon(ws).ready();

    // Without the commands, refused naming them.
    await openRestore(R3, [addr(master1)]);
    await writeTask(spec);
    const refused = await waitFor('refused', async () => {
      const s = await stateOf(R3, spec.target);
      return s?.phase === 'failed' ? s : undefined;
    });
    assert.match(refused.error ?? '', /set \[restore\] stop_command and start_command/);

    const ctl = fileURLToPath(new URL('../../test/support/instance-ctl.sh', import.meta.url));
    const root = mkdtempSync(join(secrets, 'ctl-'));
    writeFileSync(join(root, String(master1.port)), join(master1.datadir, '..'));
    ws.writeAgentConfig({
      repository,
      archive: { binlogs: 'off' },
      restore: { stop_command: `${ctl} stop ${root} {port}`, start_command: `${ctl} start ${root} {port}` },
    });
    restarted.push(join(master1.datadir, '..'));
    await writeTask({ ...spec, attempt: 2 });
    const done = await waitDone(R3, spec.target, 2);
    assert.ok(covers(parseGtidPos(done.gtid ?? ''), parseGtidPos(spec.toGtid)), `${done.gtid} reaches ${spec.toGtid}`);
    assert.deepEqual(
      done.phases.map((p) => p.phase),
      ['claimed', 'fetch', 'load', 'replay', 'done'],
    );
    // Its agent logs in with its drop-in (the source's mysql.* came with the datadir), over TCP.
    const conn = await mysql.createConnection({ host: master1.host, port: master1.port, user: ADMIN_USER, password: ADMIN_PASSWORD });
    try {
      const [rows] = await conn.query('SELECT @@datadir AS d, COUNT(*) AS n FROM bank.acct');
      const row = (rows as { d: string; n: number }[])[0]!;
      assert.equal(row.d, datadirBefore);
      assert.equal(Number(row.n), 200, "shard 1's half of the accounts");
      const [tasks] = await conn.query('SELECT COUNT(*) AS n FROM infodba_schema.global_backup');
      assert.equal(Number((tasks as { n: number }[])[0]!.n), 0, "the source's task rows are gone");
    } finally {
      await conn.end();
    }
  });
});
