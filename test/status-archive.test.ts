// Issue 19 item 2 in `status --cluster`: each shard master whose binlogs its agent archives shows
// the archive's lag and the newest GTID archived (from the presence row its agent writes, no extra
// statement); a replica shows none. A binlog file the master purged before it was archived is a
// gap, named there as the instance's problem; so is an archived object deleted (a hole), once the
// agent looked at its shard's archive.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { covers, parseGtidPos } from '../src/archive/gtid.js';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { waitFor } from './support/workspace.js';

let cluster: TestCluster;
let ws: ClusterWorkspace;
let repoDir: string;
let spiderIni: string;
let daemon: DaemonProcess | undefined;

interface Shown {
  serverName: string;
  role: string;
  port: number;
  archive?: { lagS: number | null; gtid: string; note: string };
  problems: string[];
}

before(async () => {
  cluster = await setUpCluster({ shards: 2, slaves: [0], tdbctl: true });
  repoDir = mkdtempSync(join(tmpdir(), 'sb-status-archive-'));
  ws = cluster.workspace({
    serves: ['spider0', 'master0', 'master1', 'slave0'],
    config: {
      repository: { type: 'posix', path: repoDir, prefix: 'c1' },
      // A short bound: segments are cut 5 s after their oldest transaction.
      archive: { max_lag: '15s' },
      agent: { tick_interval: '1s' },
    },
  });
  spiderIni = ws.dropIn(cluster.spider);
});

after(async () => {
  await daemon?.dispose();
  await cluster?.close();
  if (repoDir) rmSync(repoDir, { recursive: true, force: true });
});

const pos = async (inst: Instance): Promise<string> =>
  (await cluster.query<{ g: string }>(inst, 'SELECT @@GLOBAL.gtid_binlog_pos AS g'))[0]?.g ?? '';

async function clusterStatus(): Promise<{ instances: Shown[]; text: string }> {
  const j = await ws.cli('status', '--cluster', '-c', spiderIni, '--format', 'json');
  const t = await ws.cli('status', '--cluster', '-c', spiderIni);
  return { instances: (JSON.parse(j.stdout) as { instances: Shown[] }).instances, text: t.stdout };
}

describe('status --cluster and the binlog archive', { timeout: 300_000 }, () => {
  test('every archiving shard master shows its lag and the newest GTID archived; the replica none', async () => {
    daemon = new DaemonProcess(ws);
    await daemon.ready();
    for (const m of cluster.masters) await cluster.exec(m, 'CREATE DATABASE IF NOT EXISTS arch_probe');
    const seen = await waitFor(
      'both masters archived, as status --cluster shows',
      async () => {
        const s = await clusterStatus();
        const masters = s.instances.filter((i) => i.role === 'master');
        return masters.length === 2 && masters.every((m) => m.archive && m.archive.gtid !== '' && m.archive.lagS !== null) ? s : undefined;
      },
      180_000,
    );
    for (const m of cluster.masters) {
      const shown = seen.instances.find((i) => i.port === m.port) as Shown;
      const archived = parseGtidPos(shown.archive!.gtid);
      // What was archived is the master's own history, up to where it is now.
      assert.ok(covers(parseGtidPos(await pos(m)), archived), `${m.name}: ${shown.archive!.gtid} within ${await pos(m)}`);
      assert.ok(archived.size > 0, m.name);
      // Nothing wrong with the archive (on a loaded machine the lag may pass the bound for a moment: said, not a hole).
      assert.doesNotMatch(shown.archive!.note, /gap|hole|exited|cannot/, `${m.name}: ${shown.archive!.note}`);
      assert.match(seen.text, new RegExp(`${shown.serverName} 127\\.0\\.0\\.1:${m.port} shard \\d: lag \\d`));
    }
    const replica = seen.instances.find((i) => i.role === 'slave') as Shown;
    assert.equal(replica.archive, undefined);
    assert.match(seen.text, /^Binlog archive \(as each agent last published it\):$/m);
  });

  test('a binlog file purged before it was archived: a gap, named as the master’s problem', async () => {
    await daemon?.dispose();
    daemon = undefined;
    const m = cluster.masters[1] as Instance;
    // While no agent archives: the file it was in is closed, more follows, and the master purges it.
    await cluster.exec(m, 'CREATE TABLE IF NOT EXISTS arch_probe.t (i int)');
    await cluster.exec(m, 'FLUSH BINARY LOGS');
    await cluster.exec(m, 'INSERT INTO arch_probe.t VALUES (1)');
    await cluster.exec(m, 'FLUSH BINARY LOGS');
    const [newest] = (await cluster.query<{ Log_name: string }>(m, 'SHOW BINARY LOGS')).map((r) => r.Log_name).slice(-1);
    await cluster.exec(m, 'PURGE BINARY LOGS TO ?', [newest]);
    daemon = new DaemonProcess(ws);
    await daemon.ready();
    const shown = await waitFor(
      'the gap in status --cluster',
      async () => (await clusterStatus()).instances.find((i) => i.port === m.port && /gap/.test(i.archive?.note ?? '')),
      180_000,
    );
    assert.ok(
      shown.problems.some((p) => /^binlog archive: .*gap/.test(p)),
      JSON.stringify(shown.problems),
    );
    const other = (await clusterStatus()).instances.find((i) => i.port === (cluster.masters[0] as Instance).port) as Shown;
    assert.doesNotMatch(other.archive?.note ?? '', /gap/);
  });

  test('an archived object deleted: a hole, named as the master’s problem once its agent looked (a reload looks at once)', async () => {
    const m = cluster.masters[0] as Instance;
    const shardDir = join(repoDir, 'c1', 'binlogs', 'shard-0');
    const [index] = walk(shardDir).filter((f) => f.endsWith('/index.json'));
    assert.ok(index, `an index under ${shardDir}`);
    const first = join(dirname(index), '000000000000.zst');
    rmSync(first);
    daemon!.signal('SIGHUP');
    const shown = await waitFor(
      'the hole in status --cluster',
      async () => (await clusterStatus()).instances.find((i) => i.port === m.port && /hole in the archive/.test(i.archive?.note ?? '')),
      120_000,
    );
    assert.ok(
      shown.problems.some((p) => p.startsWith('binlog archive: ') && p.includes('000000000000.zst is missing')),
      JSON.stringify(shown.problems),
    );
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}
