// The demo end to end (`spiderbackup sandbox run`, as `npm run demo` runs it): real servers, one
// real agent daemon per simulated host, mariadb-dump backups. Then a Ctrl-C (SIGINT) in the middle
// of it. Either way nothing the sandbox started may be left running and its dir must be gone.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { recordedPids, type SandboxState } from '../src/sandbox/layout.js';
import { sandboxProcesses } from '../src/sandbox/sweep.js';
import { CLI, pidAlive, waitFor } from './support/workspace.js';

interface Demo {
  child: ChildProcess;
  output(): string;
  /** Every pid any version of its state file recorded, polled while it runs. */
  pids: Set<number>;
  exited: Promise<number | null>;
}

function startDemo(dir: string, args: string[] = []): Demo {
  const child = spawn(process.execPath, [CLI, 'sandbox', 'run', '--dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const pids = new Set<number>();
  const poll = setInterval(() => {
    try {
      const s = JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8')) as SandboxState;
      for (const p of recordedPids(s)) pids.add(p);
    } catch {
      // not there (yet, or any more), or being replaced
    }
  }, 20);
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      clearInterval(poll);
      resolve(code);
    }),
  );
  return { child, output: () => out, pids, exited };
}

function assertAllGone(dir: string, demo: Demo): void {
  // keeper + 6 mariadbd (2 masters, 2 replicas, spider, tdbctl's database) + 5 agent daemons
  assert.ok(demo.pids.size >= 12, `recorded pids: ${[...demo.pids].join(' ')}`);
  for (const pid of demo.pids) assert.equal(pidAlive(pid), false, `recorded pid ${pid} still runs`);
  assert.deepEqual(sandboxProcesses(dir), [], 'no mariadbd, supervisor or backup of the sandbox dir runs');
  assert.equal(existsSync(dir), false, `${dir} removed`);
}

describe('sandbox run (the demo)', { timeout: 280_000 }, () => {
  it('backs up the whole cluster through one agent per host, every task success, and leaves nothing behind', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'sb-sandbox-'));
    const dir = join(parent, 'demo');
    const demo = startDemo(dir);
    try {
      const code = await demo.exited;
      const out = demo.output();
      assert.equal(code, 0, out);
      const id = /backup id (demo-[\w-]+): every task succeeded/.exec(out)?.[1];
      assert.ok(id, out);
      const final = out.slice(out.indexOf('3/6'), out.indexOf('4/6'));
      const rows = final.split('\n').filter((l) => l.includes(id));
      assert.equal(rows.length, 5 + 1, final); // the heading names the id too
      assert.equal(rows.filter((l) => /\bsuccess\b/.test(l)).length, 5, final);
      const files = out.slice(out.indexOf('4/6'), out.indexOf('5/6'));
      // A dump and its manifest per instance, and the backup's restore point (the binlog archive's first
      // segments may or may not be cut yet at this moment).
      assert.equal(files.match(new RegExp(`demo/backups/${id}/[\\d.]+_\\d+/(dump\\.sql\\.zst|manifest\\.json)$`, 'gm'))?.length, 10, files);
      assert.match(files, new RegExp(`demo/points/${id}\\.json$`, 'm'), files);
      const verified = out.slice(out.indexOf('5/6'), out.indexOf('6/6'));
      assert.match(verified, /all 5 instances verified/, verified);
      // Every shard restored from its dump and rolled forward with its master's binlogs to the backup's restore point.
      assert.equal(verified.match(/restored \+ replayed to \d+-\d+-\d+/g)?.length, 2, verified);
      assert.match(verified, /check: SPT0 \d+, SPT1 \d+; sum \d+/, verified);
      assertAllGone(dir, demo);
    } finally {
      demo.child.kill('SIGKILL');
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('stops everything it started on Ctrl-C (SIGINT) in the middle of the demo, once the backup is scheduled', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'sb-sandbox-'));
    const dir = join(parent, 'demo');
    // A slow tick keeps the backup in flight when the signal comes.
    const demo = startDemo(dir, ['--tick', '2s']);
    try {
      await waitFor('the backup to be scheduled', () => /scheduled backup id/.test(demo.output()), 240_000);
      demo.child.kill('SIGINT');
      const code = await demo.exited;
      assert.equal(code, 130, demo.output());
      assert.match(demo.output(), /SIGINT: stopping everything the demo started/);
      assertAllGone(dir, demo);
    } finally {
      demo.child.kill('SIGKILL');
      rmSync(parent, { recursive: true, force: true });
    }
  });
});

describe('sandbox up --keep and down', { timeout: 280_000 }, () => {
  it('run --keep leaves it running; down stops exactly it and removes the dir; a used dir is refused', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'sb-sandbox-'));
    const dir = join(parent, 'kept');
    const demo = startDemo(dir, ['--keep']);
    try {
      assert.equal(await demo.exited, 0, demo.output());
      assert.match(demo.output(), /Stop it: spiderbackup sandbox down --dir /);
      const state = JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8')) as SandboxState;
      for (const pid of recordedPids(state)) assert.equal(pidAlive(pid), true, `pid ${pid} runs after run --keep`);
      // The agents still serve: the spider host's agent reports its instance.
      const status = spawnSync(process.execPath, [CLI, '--agent-config', state.spiderAgentConfig, 'status'], { encoding: 'utf8' });
      assert.equal(status.status, 0, status.stderr + status.stdout);

      const again = spawnSync(process.execPath, [CLI, 'sandbox', 'up', '--dir', dir], { encoding: 'utf8' });
      assert.equal(again.status, 1);
      assert.match(again.stderr, /a sandbox already runs in .*sandbox down --dir/);

      const down = spawnSync(process.execPath, [CLI, 'sandbox', 'down', '--dir', dir], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(down.status, 0, down.stderr);
      assertAllGone(dir, demo);
    } finally {
      demo.child.kill('SIGKILL');
      spawnSync(process.execPath, [CLI, 'sandbox', 'down', '--dir', dir], { timeout: 120_000 });
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('down leaves a dir that is not a sandbox alone; up refuses a non-empty dir and a bad --ports', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-not-sandbox-'));
    try {
      writeFileSync(join(dir, 'precious'), 'x');
      const down = spawnSync(process.execPath, [CLI, 'sandbox', 'down', '--dir', dir], { encoding: 'utf8' });
      assert.equal(down.status, 1);
      assert.match(down.stderr, /holds no sandbox\.json: not a sandbox dir, left as it is/);
      const up = spawnSync(process.execPath, [CLI, 'sandbox', 'up', '--dir', dir], { encoding: 'utf8' });
      assert.equal(up.status, 1);
      assert.match(up.stderr, /exists and is not empty; choose another --dir/);
      assert.equal(readFileSync(join(dir, 'precious'), 'utf8'), 'x');
      const ports = spawnSync(process.execPath, [CLI, 'sandbox', 'up', '--dir', join(dir, 'new'), '--ports', '5-3'], { encoding: 'utf8' });
      assert.equal(ports.status, 2);
      assert.match(ports.stderr, /^spiderbackup: --ports "5-3": ports must be within 1024-65535/);
      assert.equal(existsSync(join(dir, 'new')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
