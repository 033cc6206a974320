// The demo beside a running sandbox (`npm run demo` while a `sandbox up` runs, both with their
// default dirs): the demo takes a private dir, completes, and leaves the other sandbox up and
// intact. Its own file: with the demo tests of sandbox.test.ts it would pass one file's timeout.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { recordedPids, type SandboxState } from '../src/sandbox/layout.js';
import { CLI, pidAlive } from './support/workspace.js';

describe('the demo beside a running sandbox', { timeout: 400_000 }, () => {
  it('sandbox run (default dir) completes while a sandbox up (default dir) runs, which stays up and intact', async () => {
    // A private TMPDIR: both defaults live under it, as under /tmp on a developer's machine.
    const parent = mkdtempSync(join(tmpdir(), 'sb-side-'));
    const env = { ...process.env, TMPDIR: parent };
    const upDir = join(parent, 'spiderbackup-sandbox');
    try {
      const up = spawnSync(process.execPath, [CLI, 'sandbox', 'up'], { encoding: 'utf8', env, timeout: 200_000 });
      assert.equal(up.status, 0, up.stderr + up.stdout);
      const before = readFileSync(join(upDir, 'sandbox.json'), 'utf8');
      const state = JSON.parse(before) as SandboxState;
      const pids = recordedPids(state);

      // Pointed at the running sandbox's dir, the demo is refused and leaves it as it is.
      const refused = spawnSync(process.execPath, [CLI, 'sandbox', 'run', '--dir', upDir], { encoding: 'utf8', env, timeout: 120_000 });
      assert.equal(refused.status, 1, refused.stderr + refused.stdout);
      assert.match(refused.stderr, /a sandbox already runs in/);
      for (const pid of pids) assert.equal(pidAlive(pid), true, `pid ${pid} of the running sandbox after the refused run`);

      const demo = spawn(process.execPath, [CLI, 'sandbox', 'run'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
      demo.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => demo.once('close', resolve));
      assert.equal(code, 0, out);
      assert.match(out, /every task succeeded/, out);
      const demoDir = /Sandbox dir: (\S+) \(removed at the end\)/.exec(out)?.[1];
      assert.ok(demoDir?.startsWith(join(parent, 'spiderbackup-demo-')), out);
      assert.equal(existsSync(demoDir as string), false, `${demoDir} removed`);

      // The running sandbox: the same state file, every recorded process alive, its agents serving.
      assert.equal(readFileSync(join(upDir, 'sandbox.json'), 'utf8'), before);
      for (const pid of pids) assert.equal(pidAlive(pid), true, `pid ${pid} of the running sandbox after the demo`);
      const status = spawnSync(process.execPath, [CLI, '--agent-config', state.spiderAgentConfig, 'status', '--cluster'], {
        encoding: 'utf8',
        env,
        timeout: 60_000,
      });
      assert.equal(status.status, 0, status.stderr + status.stdout);
      assert.match(status.stdout, /5 instances: every agent alive or paused/, status.stdout);
    } finally {
      spawnSync(process.execPath, [CLI, 'sandbox', 'down', '--dir', upDir], { env, timeout: 120_000 });
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
