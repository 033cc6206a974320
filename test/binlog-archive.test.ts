// Issue 19 items 1-2 on a real cluster: the daemon archives every shard master's binlog into a
// posix repository while the cross-shard transfer workload runs through both Spider nodes. The
// archive catches up with each master's @@gtid_binlog_pos, and its segments, decoded by
// mariadb-binlog, hold exactly the master's GTIDs (none missing, none twice); the lag metric ends at
// 0. The daemon SIGKILLed mid-file and started again leaves no hole, no duplicate and no object
// that no index names. A replica promoted to master: the archive goes on from it, and a replay of
// the shard from the archive's first state to the new master's position finds no hole.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { archiveReach, replayRuns, usableSegments, type ArchivedFile } from '../src/archive/archive-index.js';
import { fetchRun, readShardArchive } from '../src/archive/archive-store.js';
import { covers, parseGtidPos } from '../src/archive/gtid.js';
import { loadAgentConfig } from '../src/config/agent.js';
import { configuredRepository } from '../src/repo/agent-repository.js';
import type { Repository } from '../src/repo/repository.js';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { DaemonProcess, freePort } from './support/daemon.js';
import { parseExposition, promtool } from './support/prom.js';
import { setupBank, startTransfers, type Transfers } from './support/transfer-workload.js';
import { waitFor } from './support/workspace.js';
import { toolOutput } from './support/tool-output.js';

const PREFIX = 'c1';
// The recovery point objective: a segment is stored at the latest max_lag/3 after its oldest
// transaction. Short here: each wait for the archive to catch up is bounded by it, not by the 60 s default.
const MAX_LAG_S = 6;
const WORKLOAD_MS = 15_000;
let cluster: TestCluster;
let ws: ClusterWorkspace;
let repoDir: string;
let repo: Repository;
let metricsPort: number;
let daemon: DaemonProcess | undefined;
let transfers: Transfers | undefined;
const scratch = mkdtempSync(join(tmpdir(), 'sb-archive-test-'));

before(async () => {
  cluster = await setUpCluster({ shards: 2, slaves: [1], logSlaveUpdates: [1], hosts: 'distinct', spiders: 2, spiderInternalXa: true });
  await setupBank(cluster);
  await cluster.waitReplicated();
  repoDir = mkdtempSync(join(tmpdir(), 'sb-repo-'));
  metricsPort = await freePort();
  ws = cluster.workspace({ serves: ['spider0', 'master0', 'master1', 'slave1'], config: agentConfig() });
  repo = (await configuredRepository(loadAgentConfig(ws.agentIni)))!;
});

after(async () => {
  await transfers?.stop().catch(() => {});
  await daemon?.dispose();
  await cluster?.close();
  if (repoDir) rmSync(repoDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

const agentConfig = () => ({
  repository: { type: 'posix', path: repoDir, prefix: PREFIX },
  metrics: { listen: `127.0.0.1:${metricsPort}` },
  // The agent's presence row is a binlogged write on each master every tick: rare ticks let the
  // archive hold the master's whole position once the workload stops (lag 0).
  agent: { tick_interval: '5m' },
  archive: { max_lag: `${MAX_LAG_S}s` },
});

const pos = async (inst: Instance): Promise<string> =>
  (await cluster.query<{ g: string }>(inst, 'SELECT @@GLOBAL.gtid_binlog_pos AS g'))[0]?.g ?? '';

/** Waits (bounded) until the shard's archive holds the instance's whole binlog position. */
async function caughtUp(inst: Instance, shard: number): Promise<{ files: ArchivedFile[]; at: string }> {
  const at = await pos(inst);
  const target = parseGtidPos(at);
  const files = await waitFor(
    `the archive of shard ${shard} to hold ${inst.name}'s position`,
    async () => {
      const { files } = await readShardArchive(repo, shard);
      return covers(parseGtidPos(archiveReach(files).newest), target) ? files : undefined;
    },
    180_000,
  );
  return { files, at };
}

/** The GTIDs of a master's binlog files from `first` on (SHOW BINLOG EVENTS), in order, up to the position `upTo`. */
async function masterGtids(inst: Instance, first: string, upTo: string): Promise<string[]> {
  const files = (await cluster.query<{ Log_name: string }>(inst, 'SHOW BINARY LOGS')).map((r) => r.Log_name).filter((f) => f >= first);
  const out: string[] = [];
  for (const f of files)
    for (const e of await cluster.query<{ Event_type: string; Info: string }>(inst, 'SHOW BINLOG EVENTS IN ?', [f]))
      if (e.Event_type === 'Gtid') out.push(/GTID (\d+-\d+-\d+)/.exec(e.Info)?.[1] ?? `? ${e.Info}`);
  return upToPos(out, upTo);
}

/** The GTIDs at or before a position (the agent's own presence writes go on after it). */
function upToPos(gtids: readonly string[], upTo: string): string[] {
  const bound = parseGtidPos(upTo);
  return gtids.filter((g) => {
    const [d, , n] = g.split('-').map(Number) as [number, number, number];
    return BigInt(n) <= (bound.get(d) ?? -1n);
  });
}

/** Every usable segment of the files, fetched and decoded by mariadb-binlog: the GTIDs they hold, file by file. */
async function archivedGtids(files: readonly ArchivedFile[]): Promise<string[]> {
  const out: string[] = [];
  const dir = mkdtempSync(join(scratch, 'fetch-'));
  for (const f of [...files].sort((a, b) => (a.file < b.file ? -1 : 1))) {
    const { segments } = usableSegments(f);
    if (segments.length === 0) continue;
    const path = await fetchRun(repo, { file: f, segments, startGtid: '', stopGtid: '' }, dir);
    const text = await toolOutput('mariadb-binlog', ['--no-defaults', path]);
    for (const m of text.matchAll(/^#\d{6} .*\bGTID (\d+-\d+-\d+)/gm)) out.push(m[1] as string);
  }
  return out;
}

const duplicates = (xs: readonly string[]): string[] => xs.filter((x, i) => xs.indexOf(x) !== i);

/** The archive lag per port from the daemon's /metrics; and the bound. */
async function lagSamples(): Promise<{ lag: Map<number, number>; max: number | undefined }> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  const { samples } = parseExposition(await res.text());
  const lag = new Map<number, number>();
  for (const s of samples) if (s.name === 'spiderbackup_binlog_archive_lag_seconds') lag.set(Number(s.labels.port), s.value);
  return { lag, max: samples.find((s) => s.name === 'spiderbackup_binlog_archive_max_lag_seconds')?.value };
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.min(s.length - 1, Math.floor(q * s.length))] as number);
};

/**
 * The workload for `ms` and at least `flushes` FLUSH BINARY LOGS on each master (one every few
 * seconds: counted, so a slow machine rotates as often); lag sampled every second.
 */
async function workload(ms: number, flushes: number): Promise<{ lags: number[]; committed: number }> {
  transfers = await startTransfers(cluster, 4);
  const lags: number[] = [];
  const end = Date.now() + ms;
  let k = 0;
  let committed = 0;
  try {
    while (Date.now() < end || k < 4 * flushes) {
      await new Promise((r) => setTimeout(r, 1000));
      const { lag } = await lagSamples().catch(() => ({ lag: new Map<number, number>() }));
      for (const m of cluster.masters) if (lag.has(m.port)) lags.push(lag.get(m.port) as number);
      if (++k % 4 === 0) for (const m of cluster.masters) await cluster.exec(m, 'FLUSH BINARY LOGS');
    }
  } finally {
    const stats = await transfers.stop();
    transfers = undefined;
    committed = stats.committed;
  }
  return { lags, committed };
}

/** Every .zst under the repository's binlog folder that no index names. */
function unnamedObjects(): string[] {
  const root = join(repoDir, PREFIX, 'binlogs');
  const all: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }))
      if (e.isDirectory()) walk(join(d, e.name));
      else all.push(join(d, e.name));
  };
  walk(root);
  const named = new Set<string>();
  for (const f of all.filter((p) => p.endsWith('/index.json'))) {
    const index = JSON.parse(readFileSync(f, 'utf8')) as { segments: { object: string }[] };
    for (const s of index.segments) named.add(join(f, '..', s.object));
  }
  return all.filter((p) => p.endsWith('.zst') && !named.has(p)).map((p) => relative(root, p));
}

describe('binlog archive', { timeout: 900_000 }, () => {
  test('under the transfer workload every master is archived; the archive catches up, each GTID once, lag 0 at the end', async () => {
    daemon = new DaemonProcess(ws);
    await daemon.ready();
    for (const m of cluster.masters) await daemon.waitLog((l) => l.msg === 'binlog archiver: streaming' && l.port === m.port, 60_000);
    const t0 = Date.now();
    const { lags, committed } = await workload(WORKLOAD_MS, 3);
    const bytesBefore = archivedBytes();
    for (const [i, m] of cluster.masters.entries()) {
      const { files, at } = await caughtUp(m, i);
      const own = files.filter((f) => f.port === m.port);
      assert.ok(own.length >= 3, `${m.name}: rotated files archived (${own.map((f) => f.file).join(', ')})`);
      assert.ok(own.filter((f) => f.closed).length >= 2, `${m.name}: closed files marked closed`);
      const first = own.map((f) => f.file).sort()[0]!;
      const want = await masterGtids(m, first, at);
      const got = upToPos(await archivedGtids(own), at);
      assert.deepEqual(duplicates(got), [], `${m.name}: no GTID archived twice`);
      assert.deepEqual(got, want, `${m.name}: the archive holds exactly the master's GTIDs from ${first} on`);
      assert.deepEqual(archiveReach(files).gaps, [], `${m.name}: no hole`);
    }
    const caughtUpS = (Date.now() - t0) / 1000;
    await waitFor(
      'the lag metric at 0 for every master',
      async () => {
        const { lag, max } = await lagSamples();
        return max === MAX_LAG_S && cluster.masters.every((m) => lag.get(m.port) === 0);
      },
      60_000,
    );
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const check = await promtool(['check', 'metrics'], text);
    assert.equal(check.code, 0, `promtool check metrics:\n${check.output}`);
    const st = await ws.cli('status');
    assert.match(
      st.stdout,
      // One line per archiving master, in no particular order: the first carries the label.
      new RegExp(`^(?:Binlogs:)? +port ${cluster.masters[0]!.port} \\(shard 0\\): lag 0 ms, archived up to \\d+-\\d+-\\d+`, 'm'),
    );
    process.stdout.write(
      `# archive lag under the workload (${committed} transfers in ${WORKLOAD_MS / 1000} s, ${lags.length} samples): ` +
        `p50 ${quantile(lags, 0.5)} s, p99 ${quantile(lags, 0.99)} s, max ${Math.max(...lags)} s; ` +
        `archived ${bytesBefore} binlog bytes, ${Math.round(bytesBefore / caughtUpS)} B/s over ${caughtUpS.toFixed(1)} s\n`,
    );
  });

  test('the daemon SIGKILLed mid-file and started again: no hole, no duplicate, every object named by an index', async () => {
    assert.ok(daemon);
    transfers = await startTransfers(cluster, 4);
    try {
      // Mid-file: the workload writes, segments are being cut; the child stream is left running.
      await waitFor('transfers under way', () => transfers!.committed() > 200);
      // Mid-file: each master's current file has segments stored, and more are on the way.
      for (const [i, m] of cluster.masters.entries()) {
        const current = (await cluster.query<{ File: string }>(m, 'SHOW MASTER STATUS'))[0]?.File;
        await waitFor(
          `a segment of ${m.name}'s ${current} archived`,
          async () => (await readShardArchive(repo, i)).files.some((f) => f.port === m.port && f.file === current && f.segments.length > 0),
          120_000,
        );
      }
      daemon.signal('SIGKILL');
      await daemon.exited;
      await daemon.dispose();
      const committed = transfers.committed();
      await waitFor('more transfers while no daemon runs', () => transfers!.committed() > committed + 200);
      daemon = new DaemonProcess(ws);
      await daemon.ready();
      // The stream the killed daemon left running goes first; each master's file is resumed after its stored bytes.
      for (const m of cluster.masters) {
        await daemon.waitLog(
          (l) => l.msg === 'binlog archiver: killed the stream a previous daemon left running' && l.port === m.port,
          60_000,
        );
        const started = await daemon.waitLog((l) => l.msg === 'binlog archiver: streaming' && l.port === m.port, 60_000);
        assert.ok(Number(started.resumeAt) > 0, `${m.name}: resumed in ${String(started.file)} at byte ${String(started.resumeAt)}`);
      }
      await waitFor('more transfers after the restart', () => transfers!.committed() > committed + 600, 120_000);
    } finally {
      await transfers.stop();
      transfers = undefined;
    }
    for (const [i, m] of cluster.masters.entries()) {
      const { files, at } = await caughtUp(m, i);
      assert.deepEqual(archiveReach(files).gaps, [], `${m.name}: no hole`);
      const own = files.filter((f) => f.port === m.port);
      const got = await archivedGtids(own);
      assert.deepEqual(duplicates(got), [], `${m.name}: each GTID once over the chain`);
      assert.deepEqual(upToPos(got, at), await masterGtids(m, own.map((f) => f.file).sort()[0]!, at), `${m.name}: none missing`);
    }
    assert.deepEqual(unnamedObjects(), [], 'every segment object is named by an index');
  });

  test('a replica promoted to master: the archive goes on from it, no missing GTID across the failover', async () => {
    assert.ok(daemon);
    const [old, promoted] = [cluster.masters[1]!, cluster.slaves[0]!];
    transfers = await startTransfers(cluster, 4);
    try {
      await waitFor('transfers under way', () => transfers!.committed() > 200);
    } finally {
      await transfers.stop();
      transfers = undefined;
    }
    await cluster.waitReplicated();
    // The failover: the replica stops replicating and takes writes; the old master is demoted.
    await cluster.exec(old, 'SET GLOBAL read_only = ON');
    await cluster.exec(promoted, 'STOP SLAVE');
    await cluster.exec(promoted, 'RESET SLAVE ALL');
    await cluster.exec(promoted, 'SET GLOBAL read_only = OFF');
    await daemon.waitLog((l) => l.msg === 'binlog archiver: streaming' && l.port === promoted.port, 120_000);
    // Writes on the new master, across a rotation.
    for (let k = 0; k < 300; k++) {
      await cluster.exec(promoted, 'UPDATE bank.acct SET balance = balance + 1 WHERE id = ?', [1 + 2 * (k % 50)]);
      if (k === 150) await cluster.exec(promoted, 'FLUSH BINARY LOGS');
    }
    const { files, at: target } = await caughtUp(promoted, 1);
    assert.ok(
      files.some((f) => f.port === promoted.port),
      'the new master archives into the same shard',
    );
    const first = [...files].sort((a, b) => (covers(parseGtidPos(a.fileStart), parseGtidPos(b.fileStart)) ? 1 : -1))[0]!;
    const r = replayRuns(files, first.fileStart, target);
    assert.ok('runs' in r, `no hole from ${first.fileStart} to ${target}: ${JSON.stringify('gap' in r ? r.gap : '')}`);
    assert.deepEqual(archiveReach(files).gaps, []);
    // Every GTID the new master wrote itself is archived from its files.
    const mine = (await masterGtids(promoted, '', target)).filter((g) => g.split('-')[1] === String(serverIdOf(promoted)));
    const archived = new Set(await archivedGtids(files.filter((f) => f.port === promoted.port)));
    assert.ok(mine.length >= 300);
    assert.deepEqual(
      mine.filter((g) => !archived.has(g)),
      [],
    );
    await waitFor(
      'the old master has no archiver',
      () => daemon!.log((l) => l.msg.startsWith('binlog archive: no longer a shard master') && l.instance === `${old.host}:${old.port}`),
      60_000,
    );
  });

  test('a reload with [archive] binlogs = off stops the archivers; on again starts them', async () => {
    assert.ok(daemon);
    const config = agentConfig();
    ws.writeAgentConfig({ ...config, archive: { binlogs: 'off' } });
    daemon.signal('SIGHUP');
    await daemon.waitLog('binlog archive off: the archivers stop', 60_000);
    const stopped = daemon.lines.length;
    await waitFor('no mariadb-binlog of the daemon left', () => !childrenOf(daemon!.pid).some((c) => c.includes('mariadb-binlog')), 30_000);
    ws.writeAgentConfig(config);
    daemon.signal('SIGHUP');
    await waitFor(
      'the archivers start again',
      () => daemon!.lines.slice(stopped).filter((l) => l.msg === 'binlog archiver: streaming').length >= 2,
      60_000,
    );
  });
});

/** The sandbox's replica of master k has server id 101 + k. */
const serverIdOf = (slave: Instance): number => 101 + slave.shardValue;

function archivedBytes(): number {
  const root = join(repoDir, PREFIX, 'binlogs');
  let n = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name === 'index.json')
        for (const s of (JSON.parse(readFileSync(join(d, e.name), 'utf8')) as { segments: { length: number }[] }).segments) n += s.length;
    }
  };
  walk(root);
  return n;
}

/** The command lines of a process's children (/proc). */
function childrenOf(pid: number): string[] {
  const out: string[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
