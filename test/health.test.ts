// Health that matches reality, against a real instance and the real daemon: stopping the only
// served mariadbd (or giving the agent a wrong password) turns /healthz to 503 naming the instance
// and why, host `status` to exit 1 naming it, and `spiderbackup_instance_up` to 0; bringing it
// back (or fixing the password and reloading) undoes all three. A paused host stays healthy. The
// per-port backup counters have their 0 sample from the start, so `increase()` sees a first failure.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster } from './support/cluster.js';
import { waitFor } from './support/workspace.js';
import { DaemonProcess, freePort } from './support/daemon.js';
import { parseExposition, promtool, valueOf } from './support/prom.js';

let cluster: TestCluster;
let m0: Instance;

before(async () => {
  cluster = await setUpCluster({ shards: 1, slaves: [] });
  m0 = cluster.masters[0] as Instance;
});

after(() => cluster?.close());

interface HealthBody {
  status: string;
  summary?: string;
  instancesDown: { port: number; role: string; why: string; error: string; file: string }[];
}

async function health(port: number): Promise<{ code: number; body: HealthBody }> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { code: res.status, body: (await res.json()) as HealthBody };
}

async function metrics(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

async function assertPromtoolClean(text: string): Promise<void> {
  const r = await promtool(['check', 'metrics'], text);
  assert.equal(r.code, 0, `promtool check metrics:\n${r.output}`);
}

const upOf = (text: string, inst: Instance) => {
  const e = parseExposition(text);
  const s = e.samples.filter((x) => x.name === 'spiderbackup_instance_up' && x.labels.port === String(inst.port));
  return s.length === 1 ? s[0]?.value : undefined;
};

/** Waits for /healthz to answer `code` (the daemon ticks every second; reconnects back off up to a minute). */
const healthBecomes = (port: number, code: number, timeoutMs = 120_000) =>
  waitFor(
    `/healthz ${code}`,
    async () => {
      const h = await health(port);
      return h.code === code ? h : undefined;
    },
    timeoutMs,
  );

describe('health that matches reality', { timeout: 600_000 }, () => {
  test('the only instance stopped: 503, status 1, instance_up 0; paused: 200; started again: 200 and 0', async (t) => {
    const port = await freePort();
    const ws = cluster.workspace({ config: { metrics: { listen: `127.0.0.1:${port}` } }, serves: [m0] });
    const file = ws.dropIn(m0);
    const daemon = new DaemonProcess(ws);
    try {
      await daemon.ready();
      // Right after the start, before any backup: every per-port counter is there at 0.
      const fresh = await metrics(port);
      const e = parseExposition(fresh);
      for (const event of ['started', 'succeeded', 'failed', 'killed']) {
        const samples = e.samples.filter((s) => s.name === `spiderbackup_backups_${event}_total` && s.labels.port === String(m0.port));
        assert.deepEqual(
          samples.map((s) => s.value),
          [0],
          `spiderbackup_backups_${event}_total{port="${m0.port}"} 0 before any backup`,
        );
      }
      assert.equal(upOf(fresh, m0), 1);
      await assertPromtoolClean(fresh);
      assert.equal((await healthBecomes(port, 200)).body.status, 'ok');
      assert.equal((await ws.cli('status')).code, 0);

      await cluster.stop(m0);
      try {
        const down = await healthBecomes(port, 503);
        t.diagnostic(`/healthz with ${m0.name} stopped: ${JSON.stringify(down.body)}`);
        assert.equal(down.body.status, 'instance-down');
        assert.equal(down.body.instancesDown.length, 1);
        const d = down.body.instancesDown[0] as HealthBody['instancesDown'][0];
        assert.equal(d.port, m0.port);
        assert.equal(d.file, file);
        assert.match(d.why, /^cannot be reached \((ECONNREFUSED|ECONNRESET|PROTOCOL_CONNECTION_LOST)\)$/);
        assert.match(down.body.summary ?? '', new RegExp(`port ${m0.port} \\(master\\) cannot be reached`));

        const status = await ws.cli('status');
        t.diagnostic(`status with ${m0.name} stopped (exit ${status.code}):\n${status.stdout}`);
        assert.equal(status.code, 1, 'status exits 1 while an instance is down');
        assert.match(status.stdout, new RegExp(`DOWN: *port ${m0.port} \\(master\\) cannot be reached`));
        const json = JSON.parse((await ws.cli('status', '--format', 'json')).stdout) as { instancesDown: { port: number }[] };
        assert.deepEqual(
          json.instancesDown.map((x) => x.port),
          [m0.port],
        );

        const text = await waitFor('spiderbackup_instance_up 0', async () => {
          const x = await metrics(port);
          return upOf(x, m0) === 0 ? x : undefined;
        });
        await assertPromtoolClean(text);

        // A paused host: the instance was stopped on purpose; healthy, exit 0 (the gauge stays honest).
        assert.equal((await ws.cli('pause', '--for', '10m', '--reason', 'maintenance')).code, 0);
        const paused = await healthBecomes(port, 200);
        assert.equal(paused.body.status, 'ok');
        assert.deepEqual(paused.body.instancesDown, []);
        assert.equal((await ws.cli('status')).code, 0, 'paused: status exits 0');
        assert.equal(upOf(await metrics(port), m0), 0);
        assert.equal((await ws.cli('resume')).code, 0);
        assert.equal((await healthBecomes(port, 503)).body.status, 'instance-down', 'resumed: down again');
        assert.equal((await ws.cli('status')).code, 1);
      } finally {
        await cluster.start(m0);
      }
      const back = await healthBecomes(port, 200);
      assert.equal(back.body.status, 'ok');
      assert.equal((await ws.cli('status')).code, 0, 'status exits 0 again');
      assert.equal(upOf(await metrics(port), m0), 1);

      // 3 still wins when the daemon itself is down (its last snapshot had nothing down here,
      // but the rule is the order: not running first).
      daemon.signal('SIGTERM');
      await daemon.exited;
      assert.equal((await ws.cli('status')).code, 3);
    } finally {
      await daemon.dispose();
      ws.close();
    }
  });

  test('a wrong password: 503 and status 1 naming the refused login; fixed and reloaded: 200 and 0', async (t) => {
    const port = await freePort();
    const ws = cluster.workspace({
      config: { metrics: { listen: `127.0.0.1:${port}` } },
      serves: [m0],
      ini: { MysqlPasswd: 'not-the-password' },
    });
    const daemon = new DaemonProcess(ws);
    try {
      await daemon.ready();
      const down = await healthBecomes(port, 503);
      t.diagnostic(`/healthz with a wrong password: ${JSON.stringify(down.body)}`);
      assert.equal(down.body.status, 'instance-down');
      assert.equal(down.body.instancesDown[0]?.port, m0.port);
      assert.equal(down.body.instancesDown[0]?.why, "refuses the agent's login (ER_ACCESS_DENIED_ERROR)");
      assert.match(down.body.instancesDown[0]?.error ?? '', /Access denied for user/);
      assert.doesNotMatch(JSON.stringify(down.body), /not-the-password/, 'never the password');
      const status = await ws.cli('status');
      assert.equal(status.code, 1);
      assert.match(status.stdout, new RegExp(`DOWN: *port ${m0.port} \\(master\\) refuses the agent's login`));
      assert.doesNotMatch(status.stdout, /not-the-password/);
      assert.equal(upOf(await metrics(port), m0), 0);
      // Before any backup, and with the instance never read: the counters are there all the same.
      assert.equal(valueOf(parseExposition(await metrics(port)), 'spiderbackup_backups_failed_total', { port: String(m0.port) }), 0);
      assert.ok(
        parseExposition(await metrics(port)).samples.some(
          (s) => s.name === 'spiderbackup_backups_failed_total' && s.labels.port === String(m0.port),
        ),
      );

      cluster.writeInstanceIni(ws.confDir, m0);
      daemon.signal('SIGHUP');
      const back = await healthBecomes(port, 200);
      assert.equal(back.body.status, 'ok');
      assert.equal((await ws.cli('status')).code, 0);
      assert.equal(upOf(await metrics(port), m0), 1);
    } finally {
      await daemon.dispose();
      ws.close();
    }
  });
});
