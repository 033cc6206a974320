// Metrics, progress and privileges against a real cluster and the real daemon: `promtool check
// metrics` on its real /metrics, the last-backup gauges after a real backup (the fake backup writes
// into the instance's BackupDir), the running backup's bytes growing in the presence row and in
// host `status`, and a user without a privilege told which one it lacks.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster } from './support/cluster.js';
import { createPresenceTable } from '../src/sql/ddl.js';
import { insertTasks, statusOf } from './support/tasks.js';
import { pidAlive, waitFor } from './support/workspace.js';
import { DaemonProcess, freePort } from './support/daemon.js';
import { parseExposition, promtool, valueOf, type Exposition } from './support/prom.js';
import type { DaemonStatus } from '../src/state/daemon-status.js';

let cluster: TestCluster;
let m0: Instance;

before(async () => {
  cluster = await setUpCluster({ shards: 1, slaves: [] });
  m0 = cluster.masters[0] as Instance;
});

after(() => cluster?.close());

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

async function assertPromtoolClean(text: string): Promise<void> {
  const r = await promtool(['check', 'metrics'], text);
  assert.equal(r.code, 0, `promtool check metrics:\n${r.output}`);
}

const running = (e: Exposition) => valueOf(e, 'spiderbackup_backup_running', { port: String(m0.port) });

test('a backup seen through /metrics (promtool-clean before, during and after), the presence and host status', async () => {
  const port = await freePort();
  const ws = cluster.workspace({ config: { metrics: { listen: `127.0.0.1:${port}` } }, serves: [m0] });
  const backupDir = join(ws.confDir, 'dbbak');
  const id = 'm-progress';
  const daemon = new DaemonProcess(ws);
  const startedAt = Date.now() / 1000;
  try {
    await daemon.ready();
    const idle = await scrape(port);
    await assertPromtoolClean(idle);
    assert.equal(valueOf(parseExposition(idle), 'spiderbackup_backup_running', { port: String(m0.port) }), 0);
    // No success yet on this instance: 0, so "no success for 26 h" fires for it.
    assert.equal(valueOf(parseExposition(idle), 'spiderbackup_last_success_timestamp_seconds', { port: String(m0.port) }), 0);

    ws.behave(m0.port, { block: true, write: { bytes: 64 * 1024, everyMs: 250 } });
    await insertTasks(cluster, [{ backupId: id, for: m0 }]);
    try {
      // The supervisor measures every 2 s; the presence carries it at the next tick.
      const seen: number[] = [];
      await waitFor(
        'RunningBytes to grow in the presence row',
        async () => {
          const [row] = await cluster.query<{ RunningBytes: string | number | null; RunningBackupId: string }>(
            m0,
            'SELECT RunningBytes, RunningBackupId FROM infodba_schema.spiderbackup_presence WHERE Host = ? AND Port = ?',
            [m0.host, m0.port],
          );
          if (row?.RunningBackupId === id && row.RunningBytes !== null) {
            const n = Number(row.RunningBytes);
            if (seen.length === 0 || n > (seen.at(-1) as number)) seen.push(n);
          }
          return seen.length >= 2;
        },
        60_000,
      );
      assert.ok((seen[0] as number) > 0);

      const shown = await waitFor(
        'host status to show the bytes and the rate',
        async () => {
          const r = await ws.cli('status', '--format', 'json');
          const v = JSON.parse(r.stdout) as { instances: DaemonStatus['instances'] };
          const p = v.instances[0]?.progress;
          return p && p.backupId === id && (p.bytes ?? 0) > (seen[0] as number) ? p : undefined;
        },
        60_000,
      );
      assert.ok(shown.bytesAt !== null);
      const text = (await ws.cli('status')).stdout;
      assert.match(text, new RegExp(`${id} running pid \\d+, [0-9.]+ (KiB|MiB) written, [0-9.]+ (B|KiB|MiB)/s`));

      const during = await waitFor(
        'running gauges',
        async () => {
          const t = await scrape(port);
          const e = parseExposition(t);
          return running(e) === 1 && valueOf(e, 'spiderbackup_backup_running_bytes', { port: String(m0.port) }) > 0 ? t : undefined;
        },
        30_000,
      );
      await assertPromtoolClean(during);
    } finally {
      ws.release(m0.port);
    }

    await waitFor('success', async () => (await statusOf(cluster, m0, id)) === 'success', 60_000);
    const dir = join(backupDir, id);
    const written = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    let e: Exposition | undefined;
    const after = await waitFor(
      'last-backup gauges',
      async () => {
        const t = await scrape(port);
        e = parseExposition(t);
        return running(e) === 0 && valueOf(e, 'spiderbackup_backups_succeeded_total', { port: String(m0.port) }) === 1 ? t : undefined;
      },
      30_000,
    );
    await assertPromtoolClean(after);
    const labels = { port: String(m0.port), role: 'master' };
    const ex = e as Exposition;
    // The supervisor's last measure is taken after the backup exited: every byte it wrote.
    assert.equal(valueOf(ex, 'spiderbackup_last_backup_bytes', labels), written);
    const duration = valueOf(ex, 'spiderbackup_last_backup_duration_seconds', labels);
    assert.ok(duration > 0 && duration < Date.now() / 1000 - startedAt + 1, `duration ${duration}`);
    const lastSuccess = valueOf(ex, 'spiderbackup_last_success_timestamp_seconds', labels);
    assert.ok(lastSuccess >= startedAt - 5 && lastSuccess <= Date.now() / 1000 + 5, `last success ${lastSuccess}, test began ${startedAt}`);
    assert.ok(!ex.samples.some((s) => s.name === 'spiderbackup_backup_running_bytes'), 'no running bytes once it ended');

    // A new daemon knows the last success from the table.
    daemon.signal('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
    const again = new DaemonProcess(ws);
    try {
      await again.ready();
      const t = await scrape(port);
      const restarted = valueOf(parseExposition(t), 'spiderbackup_last_success_timestamp_seconds', labels);
      assert.ok(Math.abs(restarted - lastSuccess) <= 2, `after a restart ${restarted}, before ${lastSuccess}`);
      await assertPromtoolClean(t);
    } finally {
      await again.dispose();
    }
  } finally {
    await waitFor('the backup to end', () => ws.runs().every((r) => !pidAlive(r.pid)), 60_000).catch(() => undefined);
    await daemon.dispose();
    ws.close();
  }
});

test('a user without a privilege is told which one: status names INSERT on the presence table and BINLOG ADMIN for the purge', async () => {
  const user = 'sb_noinsert';
  const password = 'Np-1-pw';
  await cluster.exec(m0, createPresenceTable());
  await cluster.exec(m0, `CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY '${password}'`);
  await cluster.exec(m0, `GRANT SELECT, UPDATE, DELETE ON infodba_schema.global_backup TO '${user}'@'%'`);
  await cluster.exec(m0, `GRANT SELECT ON infodba_schema.spiderbackup_presence TO '${user}'@'%'`);
  const ws = cluster.workspace({ serves: [m0], ini: { MysqlUser: user, MysqlPasswd: password } });
  const daemon = new DaemonProcess(ws);
  try {
    await daemon.ready();
    const line = await daemon.waitLog(/cannot publish this agent's presence/);
    assert.match(
      String(line.err),
      /^missing privilege INSERT, UPDATE on infodba_schema\.spiderbackup_presence \(needed for the agent's presence/,
    );
    const text = await waitFor(
      'status to name both missing privileges',
      async () => {
        const out = (await ws.cli('status')).stdout;
        return /missing privilege INSERT, UPDATE on infodba_schema\.spiderbackup_presence/.test(out) &&
          /missing privilege .*BINLOG ADMIN/.test(out)
          ? out
          : undefined;
      },
      30_000,
    );
    assert.match(text, /cannot delete old rows/);
    // The instance is served all the same: no instance error, the tick is ok.
    const v = JSON.parse((await ws.cli('status', '--format', 'json')).stdout) as {
      instances: DaemonStatus['instances'];
      lastTick: { ok: boolean };
    };
    assert.equal(v.instances[0]?.error ?? null, null);
    assert.equal(v.lastTick.ok, true);
  } finally {
    await daemon.dispose();
    ws.close();
    await cluster.exec(m0, `DROP USER IF EXISTS '${user}'@'%'`);
  }
});

test('an instance whose user may not read the task table is reported with the privilege it lacks', async () => {
  const user = 'sb_noselect';
  const password = 'Ns-1-pw';
  await cluster.exec(m0, `CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY '${password}'`);
  const ws = cluster.workspace({ serves: [m0], ini: { MysqlUser: user, MysqlPasswd: password } });
  try {
    const r = await ws.cli('check', '--format', 'json');
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout) as { errors: { port?: number; error: string }[] };
    assert.equal(out.errors.length, 1);
    assert.match(
      out.errors[0]?.error as string,
      new RegExp(`^${m0.host}:${m0.port}: missing privilege SELECT on infodba_schema\\.global_backup \\(needed for reading, claiming`),
    );
  } finally {
    ws.close();
    await cluster.exec(m0, `DROP USER IF EXISTS '${user}'@'%'`);
  }
});
