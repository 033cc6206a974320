// Issue 20, the `spiderbackup restore` command on real clusters: a source (2 shards, a posix
// repository, the built-in mariadb-dump runner, its binlogs archived as the archiver lays them out:
// the set-up of restore-archive.test.ts) and a second cluster on other loopback addresses
// (127.0.0.12+) as the targets, served by a real agent (its presence rows) pointing at the same
// repository. `--dry-run` prints the per-shard plan and the tdbctl statements and writes nothing,
// also on a host with only the repository (the plan then from the repository alone); a missing archived binlog object is named; a non-empty target is refused and named, and accepted
// with "scratch": true; a target no agent serves is named; with the agents' side, a restore with one
// failed shard is partial (named, not routed, result.json written, the open marker gone), a second
// restore onto its targets is refused meanwhile, and --resume redoes only that shard, then routes
// the new spider node: the seeded total through it, each shard as the restore test of the point.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadAgentConfig } from '../src/config/agent.js';
import { configuredRepository } from '../src/repo/agent-repository.js';
import type { Repository } from '../src/repo/repository.js';
import { readShardArchive } from '../src/archive/archive-store.js';
import { ADMIN_PASSWORD, ADMIN_USER, type Instance } from '../src/sandbox/cluster.js';
import type { ClusterWorkspace, TestCluster } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { bankTotal, setupBank, startTransfers, type Transfers } from './support/transfer-workload.js';
import { waitFor } from './support/workspace.js';
import { archiveBinlogs } from './support/archive.js';
import {
  posixRepository,
  setUpSource,
  setUpTargets,
  waitForPresence,
  writePasswordFile,
  writeTargetFile,
} from './support/restore-clusters.js';

const PREFIX = 'rc';

let source: TestCluster<'ws'>;
let targets: TestCluster<'tws'>;
let ws: ClusterWorkspace;
let agent: DaemonProcess | undefined;
let spiderIni: string;
let repoDir: string;
let tmp: string;
let repo: Repository;
let transfers: Transfers | undefined;
let passwordFile: string;

/** Every file under the repository directory, for "nothing was written". */
function listing(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(repoDir, p));
    }
  };
  walk(repoDir);
  return out.sort();
}

const targetFile = (name: string, extra: Record<string, unknown> = {}, spiders: Instance[] = [targets.spider]): string =>
  writeTargetFile(join(tmp, name), targets, passwordFile, { spiders, extra });

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sb-restore-cmd-'));
  repoDir = mkdtempSync(join(tmpdir(), 'sb-repo-restore-'));
  passwordFile = writePasswordFile(tmp);
  const repository = posixRepository(repoDir, PREFIX);
  source = await setUpSource({
    config: { repository },
    workspaces: {
      ws: { serves: ['spider0', 'master0', 'master1'], config: { backup: { runner: 'mariadb-dump' }, restore: { claim_timeout: '40s' } } },
    },
  });
  ({ ws } = source.workspaces);
  spiderIni = ws.dropIn(source.spider);
  const r = await configuredRepository(loadAgentConfig(ws.agentIni));
  assert.ok(r);
  repo = r;
  // The new cluster: its own instances on 127.0.0.12+, its agent on the same repository (not
  // archiving: its binlogs are not the source's shards').
  targets = await setUpTargets(12, {
    spiders: 2,
    tdbctl: true,
    config: { repository, archive: { binlogs: 'off' } },
    // spider1 is served by no agent.
    workspaces: { tws: { serves: ['master0', 'master1', 'spider0'] } },
  });
  agent = new DaemonProcess(targets.workspaces.tws);
  await agent.ready();
  await setupBank(source);
});

after(async () => {
  await transfers?.stop().catch(() => {});
  await agent?.dispose();
  await targets?.close();
  await source?.close();
  if (repoDir) rmSync(repoDir, { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function restore(...args: string[]) {
  return ws.cli('restore', ...args);
}

describe('spiderbackup restore: plan, checks, refusals', { timeout: 900_000 }, () => {
  test('set-up: a backup under transfers, a point after it, the binlogs archived', async () => {
    transfers = await startTransfers(source, 4);
    try {
      await waitFor('transfers under way', () => transfers!.committed() > 50);
      const s = await ws.cli('schedule', '-c', spiderIni, '--backup-id=grc1', '--no-restore-point');
      assert.equal(s.code, 0, s.stderr);
      const run = await ws.cli('check', '--run');
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      const n = transfers.committed();
      await waitFor('transfers after the backup', () => transfers!.committed() > n + 50, 120_000);
      const p = await ws.cli('restore-point', 'prc1', '-c', spiderIni, '--format', 'json');
      assert.equal(p.code, 0, p.stderr);
    } finally {
      await transfers.stop();
      transfers = undefined;
    }
    const archived = await archiveBinlogs(source, repo);
    assert.ok(archived.files >= 2, JSON.stringify(archived));
    // The target agent has announced itself on every instance it serves.
    await waitForPresence(targets, [...targets.masters, targets.spider]);
  });

  test('--dry-run prints the plan per shard and the tdbctl statements, and writes nothing', async () => {
    const before = listing();
    const file = targetFile('target.json');
    const r = await restore('grc1', '--to-point', 'prc1', '--target', file, '--dry-run');
    process.stdout.write(r.stdout);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const [m0, m1] = targets.masters as [Instance, Instance];
    const [s0, s1] = source.masters as [Instance, Instance];
    assert.match(r.stdout, /backup grc1 to restore point prc1/);
    assert.match(
      r.stdout,
      new RegExp(
        `master ${m0.host}:${m0.port} shard 0: from SPT0 ${s0.host}:${s0.port} backup grc1 \\(mariadb-dump, [^)]+\\); after GTID \\S+ replay \\d+ archived run\\(s\\)`,
      ),
    );
    assert.match(r.stdout, new RegExp(`master ${m1.host}:${m1.port} shard 1: from SPT1 ${s1.host}:${s1.port} backup grc1`));
    assert.match(
      r.stdout,
      new RegExp(`spider ${targets.spider.host}:${targets.spider.port}: from SPIDER ${source.spider.host}:${source.spider.port}`),
    );
    assert.match(
      r.stdout,
      new RegExp(
        `routes SPT0 → ${m0.host}:${m0.port}, SPT1 → ${m1.host}:${m1.port}, SPIDER0 → ${targets.spider.host}:${targets.spider.port}`,
      ),
    );
    // The tdbctl statements, the password named by its file, never printed.
    assert.match(
      r.stdout,
      new RegExp(
        `REPLACE INTO mysql\\.servers \\(Server_name, Host, Port, Username, Password, Wrapper\\) VALUES \\('SPT0', '${m0.host}', ${m0.port}, '${ADMIN_USER}', '<the password in ${passwordFile}>', 'mysql'\\);`,
      ),
    );
    assert.match(r.stdout, /TDBCTL FLUSH ROUTING;/);
    assert.ok(!r.stdout.includes(ADMIN_PASSWORD) && !r.stderr.includes(ADMIN_PASSWORD));
    assert.match(r.stdout, /dry run: every check passed; nothing was written/);
    assert.deepEqual(listing(), before);

    const j = await restore('--to-point', 'prc1', '--target', file, '--dry-run', '--format', 'json');
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { dryRun: boolean; ok: boolean; problems: string[]; plan: string[] };
    assert.equal(doc.dryRun, true);
    assert.equal(doc.ok, true);
    assert.deepEqual(doc.problems, []);
    assert.equal(doc.plan.filter((l) => /^(master|replica|spider) /.test(l)).length, 3);
    assert.deepEqual(listing(), before);
  });

  test('--dry-run with a missing archived binlog object names it and writes nothing', async () => {
    const view = await readShardArchive(repo, 0);
    const f = view.files.find((x) => x.segments.length > 1);
    assert.ok(f);
    const seg = f.segments[1]!;
    const path = join(repoDir, `${f.folder}${seg.object}`);
    const body = readFileSync(path);
    rmSync(path);
    try {
      const before = listing();
      const r = await restore('grc1', '--to-point', 'prc1', '--target', targetFile('target.json'), '--dry-run');
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stdout,
        new RegExp(
          `PROBLEM: shard 0 \\(SPT0 [^)]+\\): the binlog archive lacks the events after \\S+ up to the point's \\S+ \\(GAP .*${seg.object} is missing`,
        ),
      );
      assert.match(r.stdout, /dry run: \d+ problem\(s\); nothing was written/);
      assert.deepEqual(listing(), before);
    } finally {
      writeFileSync(path, body);
    }
  });

  test('a non-empty target is refused and named; with "scratch": true it is accepted', async () => {
    const m1 = targets.masters[1] as Instance;
    await targets.exec(m1, 'CREATE DATABASE leftover');
    try {
      const file = targetFile('target.json');
      const r = await restore('grc1', '--to-point', 'prc1', '--target', file, '--dry-run');
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stdout,
        new RegExp(`PROBLEM: ${m1.host}:${m1.port} \\(master of shard 1 in ${file}\\): not empty: it holds leftover; .*"scratch": true`),
      );
      const scratch = targetFile('scratch.json', { scratch: true });
      const s = await restore('grc1', '--to-point', 'prc1', '--target', scratch, '--dry-run');
      assert.equal(s.code, 0, `${s.stdout}\n${s.stderr}`);
      assert.match(
        s.stdout,
        new RegExp(`note: ${m1.host}:${m1.port} \\(master of shard 1 in ${scratch}\\): scratch: leftover will be wiped`),
      );
    } finally {
      await targets.exec(m1, 'DROP DATABASE leftover');
    }
  });

  test('a target no agent serves is named; a bad target file names the file, the field and the value', async () => {
    const s1 = targets.spiders[1] as Instance;
    const file = targetFile('two-spiders.json', {}, targets.spiders);
    const r = await restore('grc1', '--to-point', 'prc1', '--target', file, '--dry-run');
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`PROBLEM: ${s1.host}:${s1.port} \\(spider node SPIDER1 in ${file}\\): no agent serves it`));

    const bad = targetFile('bad.json', { shards: { '0': { host: 'x', port: 70000 } } });
    const b = await restore('--to-point', 'prc1', '--target', bad, '--dry-run');
    assert.equal(b.code, 1);
    assert.match(b.stdout, new RegExp(`PROBLEM: ${bad}: shards\\."0"\\.port = 70000: expected a port number`));
    assert.doesNotMatch(b.stderr, /\n\s+at /);
    const onSource = targetFile('source.json', {
      shards: {
        '0': { host: source.masters[0]!.host, port: source.masters[0]!.port },
        '1': { host: targets.masters[1]!.host, port: targets.masters[1]!.port },
      },
    });
    const o = await restore('grc1', '--to-point', 'prc1', '--target', onSource, '--dry-run');
    assert.equal(o.code, 1);
    assert.match(o.stdout, /is the source's SPT0: a restore never writes onto the source/);
  });

  test('on a host with only the repository (no source spider node to ask), the plan is read from the repository alone', async () => {
    const away = source.workspace();
    const r = await away.cli('restore', '--to-point', 'prc1', '--target', targetFile('target.json'), '--dry-run');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^no source spider node is configured on this host \(.*\): the plan was read from the repository$/m);
    assert.match(r.stdout, /backup grc1 to restore point prc1 \(\S+ \S+\) \(the newest backup usable for it\):/);
    for (const [n, m] of targets.masters.entries())
      assert.match(
        r.stdout,
        new RegExp(
          `master ${m.host}:${m.port} shard ${n}: from SPT${n}\\S* \\S+ backup grc1 \\(mariadb-dump, [^)]+\\); after GTID \\S+ replay \\d+ archived run`,
        ),
      );
    assert.match(r.stdout, /dry run: every check passed; nothing was written/);
  });

  test('kill -9 of a target agent mid-restore: that shard is failed and named, nothing routed, a second restore onto its targets is refused meanwhile; --resume finishes it without redoing the done shard', async () => {
    const file = targetFile('target.json');
    const [m0, m1] = targets.masters as [Instance, Instance];
    // --parallel 1: shard 1's task is written once shard 0 is done. A session holding the global
    // read lock on its target keeps its load where it is, so the kill lands mid-load.
    const first = ws.start(['restore', 'grc1', '--to-point', 'prc1', '--target', file, '--parallel', '1']);
    const open = join(repoDir, PREFIX, 'restores', 'open');
    const id = await waitFor('the open marker', () => (existsSync(open) ? readdirSync(open)[0] : undefined), 120_000);
    assert.match(id, /^r-\d{8}-\d{6}$/);
    const blocker = await mysql.createConnection({ socketPath: m1.socket, user: 'root' });
    const stateFile = join(repoDir, PREFIX, 'restores', id, 'state', `${m1.host}_${m1.port}.json`);
    const stateOf = () =>
      existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as { phase: string; agent: { pid: number } }) : undefined;
    try {
      await blocker.query('FLUSH TABLES WITH READ LOCK');
      const loading = await waitFor('shard 1 loading', () => (stateOf()?.phase === 'load' ? stateOf() : undefined), 300_000);
      const second = await restore('grc1', '--to-point', 'prc1', '--target', file, '--dry-run');
      assert.equal(second.code, 1, second.stdout);
      assert.match(second.stdout, new RegExp(`PROBLEM: restore ${id} \\(started \\S+ on \\S+\\) is still open onto ${m0.host}:${m0.port}`));
      // status --cluster shows the open restore and its task.
      const st = await ws.cli('status', '--cluster', '-c', spiderIni);
      assert.match(
        st.stdout,
        new RegExp(`Restores:\\n  ${id}: backup grc1 to point prc1, started \\S+\\n    ${m0.host}:${m0.port}: \\w+ `),
        st.stdout,
      );

      // The agent and its worker (its own process group) die as on a kill -9 of the service.
      const dead = agent!;
      dead.signal('SIGKILL');
      await dead.exited;
      await dead.dispose();
      process.kill(-loading.agent.pid, 'SIGKILL');
    } finally {
      await blocker.end().catch(() => {});
    }
    // Restarted, the agent finds its worker gone and says so; the command ends partial.
    agent = new DaemonProcess(targets.workspaces.tws);
    await agent.ready();
    {
      const r = await first.result;
      process.stdout.write(r.stdout);
      assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, new RegExp(`restore ${id}: backup grc1 to restore point prc1, 3 task\\(s\\)`));
      assert.match(r.stdout, new RegExp(`${m0.host}:${m0.port} master shard 0: done .* at GTID \\S+`));
      assert.match(
        r.stdout,
        new RegExp(`${m1.host}:${m1.port} master shard 1: failed .*its worker \\(pid \\d+ on \\S+\\) died in phase load`),
      );
      assert.match(r.stdout, new RegExp(`restore ${id}: partial, NOT routed`));
      assert.match(r.stdout, /PROBLEM: not routed: the spider nodes are restored only once every shard reached the point/);
    }
    const base = join(repoDir, PREFIX, 'restores', id);
    const result = JSON.parse(readFileSync(join(base, 'result.json'), 'utf8')) as {
      outcome: string;
      routed: boolean;
      failed: { target: { port: number } }[];
    };
    assert.equal(result.outcome, 'partial');
    assert.equal(result.routed, false);
    assert.deepEqual(
      result.failed.map((f) => f.target.port),
      [m1.port],
    );
    assert.equal(readdirSync(join(base, 'tasks')).length, 2, 'no spider task was written');
    assert.ok(!existsSync(join(open, id)), 'the open marker is gone');
    assert.ok(!readFileSync(join(base, 'restore.json'), 'utf8').includes(ADMIN_PASSWORD));

    // The new cluster's tdbctl (the stand-in) learns the new servers when --resume routes them.
    const tdbctl = targets.tdbctl!;
    const withTdbctl = targetFile('with-tdbctl.json', { tdbctl: { host: tdbctl.host, port: tdbctl.port } });
    const again = await restore('--resume', id, '--target', withTdbctl);
    process.stdout.write(again.stdout);
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
    assert.match(again.stdout, /1 task\(s\) done and kept, 1 shard task\(s\) to redo/);
    assert.match(again.stdout, new RegExp(`routed: ${targets.spider.host}:${targets.spider.port} now route to the restored shards`));
    assert.match(again.stdout, new RegExp(`restore ${id}: done, routed in `));
    assert.match(again.stdout, /shard 0: reached GTID \S+/);
    assert.match(again.stdout, new RegExp(`tdbctl ${tdbctl.host}:${tdbctl.port}: 3 route\\(s\\) written, TDBCTL FLUSH ROUTING done`));
    assert.deepEqual(
      tdbctl.routing.map((q) => q.replace(/'[^']*'\)$/, '').replace(ADMIN_PASSWORD, 'PW')),
      [
        `REPLACE INTO mysql.servers (Server_name, Host, Port, Username, Password, Wrapper) VALUES ('SPT0', '${m0.host}', ${m0.port}, '${ADMIN_USER}', 'PW', `,
        `REPLACE INTO mysql.servers (Server_name, Host, Port, Username, Password, Wrapper) VALUES ('SPT1', '${m1.host}', ${m1.port}, '${ADMIN_USER}', 'PW', `,
        `REPLACE INTO mysql.servers (Server_name, Host, Port, Username, Password, Wrapper) VALUES ('SPIDER0', '${targets.spider.host}', ${targets.spider.port}, '${ADMIN_USER}', 'PW', `,
        'TDBCTL FLUSH ROUTING',
      ],
    );
    const [row] = await targets.query<{ Host: string; Port: number }>(
      targets.tdbctlNode!,
      "SELECT Host, Port FROM mysql.servers WHERE Server_name = 'SPT1'",
    );
    assert.equal(`${row!.Host}:${row!.Port}`, `${m1.host}:${m1.port}`);
    assert.match(again.stdout, /shard 1: reached GTID \S+/);
    const attempt = (inst: Instance) =>
      (JSON.parse(readFileSync(join(base, 'tasks', `${inst.host}_${inst.port}.json`), 'utf8')) as { attempt: number }).attempt;
    assert.equal(attempt(m0), 1, 'the done shard was not redone');
    assert.equal(attempt(m1), 2);
    assert.ok(!existsSync(join(open, id)));

    // Through the new spider node: the seeded total; it routes only to the new shards.
    const [sum] = await targets.query<{ s: string }>(targets.spider, 'SELECT SUM(balance) AS s FROM bank.acct');
    assert.equal(Number(sum!.s), bankTotal());
    const servers = await targets.query<{ Server_name: string; Host: string; Port: number }>(
      targets.spider,
      "SELECT Server_name, Host, Port FROM mysql.servers WHERE Server_name LIKE 'SPT%'",
    );
    assert.deepEqual(servers.map((x) => `${x.Server_name} ${x.Host}:${x.Port}`).sort(), [
      `SPT0 ${m0.host}:${m0.port}`,
      `SPT1 ${m1.host}:${m1.port}`,
    ]);
    // Each shard as the restore test of the same point has it: every user table's CHECKSUM TABLE,
    // and every row by a digest.
    const digest = "SELECT CONCAT(COUNT(*), '/', SUM(balance), '/', BIT_XOR(CRC32(CONCAT(id, ':', balance)))) AS d FROM bank.acct";
    const v = await ws.cli('verify', 'grc1', '-c', spiderIni, '--restore-test', '--to-point', 'prc1', '--check-sql', digest, '--checksums');
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    for (const [n, m] of [m0, m1].entries()) {
      const [row] = await targets.query<{ d: string }>(m, digest);
      assert.match(v.stdout, new RegExp(`SPT${n} ${row!.d.replaceAll('/', '\\/')}[,;]`), v.stdout);
      const tables = await targets.query<{ s: string; t: string }>(
        m,
        "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' " +
          "AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', 'infodba_schema')",
      );
      assert.ok(tables.length > 0);
      const expected = [...v.stdout.matchAll(new RegExp(`^  checksum SPT${n} (\\S+) (\\S+)$`, 'gm'))].map((x) => `${x[1]} ${x[2]}`).sort();
      const actual: string[] = [];
      for (const t of tables) {
        const [c] = await targets.query<{ Checksum: string | number }>(m, `CHECKSUM TABLE \`${t.s}\`.\`${t.t}\``);
        actual.push(`${t.s}.${t.t} ${String(c!.Checksum)}`);
      }
      assert.deepEqual(actual.sort(), expected, `CHECKSUM TABLE of shard ${n}: restored cluster vs the restore test of the point`);
    }
  });
});
