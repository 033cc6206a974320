// Issue 20 item 6 end to end: the drill of the real daemon (the CLI's own runRestore) restores the
// newest backup to the newest point onto scratch instances served by their own agent, on a short
// [drill] cron: the drill's metrics are exported (promtool accepts them), the check through the
// restored spider node holds the transfer invariant, and the scratch instances are wiped after it;
// a corrupted object in the repository then makes the next drill fail (metrics, status, log).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentConfig } from '../src/config/agent.js';
import { configuredRepository } from '../src/repo/agent-repository.js';
import type { Repository } from '../src/repo/repository.js';
import type { Instance } from '../src/sandbox/cluster.js';
import type { ClusterWorkspace, TestCluster } from './support/cluster.js';
import { DaemonProcess, freePort, type LogLine } from './support/daemon.js';
import { parseExposition, promtool, valueOf } from './support/prom.js';
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

const PREFIX = 'dr';

let source: TestCluster<'ws'>;
let targets: TestCluster<'tws'>;
let ws: ClusterWorkspace;
let agent: DaemonProcess | undefined;
let drill: DaemonProcess | undefined;
let repoDir: string;
let tmp: string;
let repo: Repository;
let transfers: Transfers | undefined;
let metricsPort: number;

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

function nextDrill(d: DaemonProcess, seen: number, re: RegExp): Promise<LogLine> {
  return d.waitLog((l) => d.lines.indexOf(l) >= seen && re.test(l.msg), 600_000);
}

/** Every file under `dir`. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('restore drill, end to end', { timeout: 1_500_000 }, () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'sb-drill-e2e-'));
    repoDir = mkdtempSync(join(tmpdir(), 'sb-repo-drill-'));
    metricsPort = await freePort();
    writePasswordFile(tmp);
    const repository = posixRepository(repoDir, PREFIX);
    source = await setUpSource({
      config: { repository },
      workspaces: {
        ws: {
          serves: ['spider0', 'master0', 'master1'],
          config: { backup: { runner: 'mariadb-dump' }, restore: { claim_timeout: '40s' }, archive: { binlogs: 'off' } },
        },
      },
    });
    ({ ws } = source.workspaces);
    const r = await configuredRepository(loadAgentConfig(ws.agentIni));
    assert.ok(r);
    repo = r;
    targets = await setUpTargets(42, {
      tdbctl: true,
      config: { repository, archive: { binlogs: 'off' } },
      workspaces: { tws: { serves: ['master0', 'master1', 'spider0'] } },
    });
    agent = new DaemonProcess(targets.workspaces.tws);
    await agent.ready();
    // The target agent has announced itself on every instance it serves.
    await waitForPresence(targets, [...targets.masters, targets.spider]);
    await setupBank(source);
  });

  after(async () => {
    await transfers?.stop().catch(() => {});
    for (const d of [drill, agent]) {
      if (!d) continue;
      d.signal('SIGTERM');
      await d.exited;
      await d.dispose();
    }
    await targets?.close();
    await source?.close();
    for (const dir of [repoDir, tmp]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a drill restores onto the scratch instances, checks the invariant, exports its metrics; a corrupt object fails the next', async () => {
    const spiderIni = ws.dropIn(source.spider);
    transfers = await startTransfers(source, 4);
    try {
      await waitFor('transfers under way', () => transfers!.committed() > 50);
      const s = await ws.cli('schedule', '-c', spiderIni, '--backup-id=gdr1', '--no-restore-point');
      assert.equal(s.code, 0, s.stderr);
      const run = await ws.cli('check', '--run');
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      const n = transfers.committed();
      await waitFor('transfers after the backup', () => transfers!.committed() > n + 50, 120_000);
      const p = await ws.cli('restore-point', 'pdr1', '-c', spiderIni, '--format', 'json');
      assert.equal(p.code, 0, p.stderr);
    } finally {
      await transfers.stop();
      transfers = undefined;
    }
    await archiveBinlogs(source, repo);

    const targetFile = writeTargetFile(join(tmp, 'drill-target.json'), targets, join(tmp, 'target.pw'), { extra: { scratch: true } });
    ws.writeAgentConfig({
      backup: { runner: 'mariadb-dump' },
      restore: { claim_timeout: '40s' },
      archive: { binlogs: 'off' },
      repository: { type: 'posix', path: repoDir, prefix: PREFIX },
      metrics: { listen: `127.0.0.1:${metricsPort}` },
      drill: { cron: '*/10 * * * * *', target: targetFile, check_sql: 'SELECT SUM(balance) FROM bank.acct', expect: String(bankTotal()) },
    });
    drill = new DaemonProcess(ws);
    const d = drill;
    await d.ready();
    const ok = await nextDrill(d, 0, /^restore drill (r-\S+ succeeded in|.*FAILED)/);
    assert.match(ok.msg, new RegExp(`^restore drill r-\\S+ succeeded in .* \\(check_sql: ${bankTotal()}\\)$`), ok.msg);
    process.stdout.write(`# ${ok.msg}\n`);
    const text = await scrape();
    const r = await promtool(['check', 'metrics'], text);
    assert.equal(r.code, 0, `promtool check metrics:\n${r.output}`);
    const e = parseExposition(text);
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_run_success'), 1);
    assert.ok(valueOf(e, 'spiderbackup_restore_drill_last_success_timestamp_seconds') > 0);
    assert.ok(valueOf(e, 'spiderbackup_restore_drill_duration_seconds') > 0);
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_failures_total'), 0);
    // Wiped after it (keep off).
    for (const m of targets.masters)
      assert.ok(!(await targets.query<{ n: string }>(m, 'SHOW DATABASES')).some((x) => Object.values(x)[0] === 'bank'), m.name);

    // A corrupt object of shard 1's backup: the next drill fails, naming it.
    const shard1 = source.masters[1] as Instance;
    const objects = files(join(repoDir, PREFIX))
      .filter((f) => f.includes('gdr1') && f.includes(`${shard1.host}_${shard1.port}`) && !f.endsWith('.json'))
      .sort((a, b) => statSync(b).size - statSync(a).size);
    const victim = objects[0];
    assert.ok(victim, JSON.stringify(files(join(repoDir, PREFIX))));
    const bytes = readFileSync(victim);
    const at = Math.floor(bytes.length / 2);
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
    writeFileSync(victim, bytes);
    const seen = d.lines.length;
    const bad = await nextDrill(d, seen, /^restore drill .*FAILED after /);
    process.stdout.write(`# ${bad.msg}\n`);
    assert.match(bad.msg, new RegExp(`${shard1.host}:${shard1.port}|${shard1.host}_${shard1.port}`), 'the shard is named');
    // Refused before anything was written: the scratch spider node got nothing to route.
    assert.ok(
      !(await targets.query<{ n: string }>(targets.spider, 'SHOW DATABASES')).some((x) => Object.values(x)[0] === 'bank'),
      'nothing restored onto the scratch spider node',
    );
    const e2 = parseExposition(await scrape());
    assert.ok(valueOf(e2, 'spiderbackup_restore_drill_failures_total') >= 1);
    assert.equal(valueOf(e2, 'spiderbackup_restore_drill_last_run_success'), 0);
    const st = await ws.cli('status');
    assert.match(st.stdout, /^Drill: .*FAILED after /m);
  });
});
