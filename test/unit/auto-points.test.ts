// The automatic restore point loop's own behaviour, without a cluster: it waits for its slots, says
// once why no point is taken (no spider instance here, or paused), re-plans on a new interval, turns
// off, and stops at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadAgentConfig, type AgentConfig } from '../../src/config/agent.js';
import { AutoRestorePoints } from '../../src/daemon/auto-points.js';

async function until(what: string, fn: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the loop: slots, one line per reason, re-plan, off, stop', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-auto-'));
  try {
    const ini = join(dir, 'spiderbackup.ini');
    writeFileSync(
      ini,
      `[agent]\nconfig_dir = ${dir}\nstate_dir = ${dir}\n[metrics]\nlisten = off\n[schedule]\nrestore_point_interval = 1s\n`,
    );
    let config: AgentConfig = loadAgentConfig(ini);
    const lines: { msg: string; level: number }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as { msg: string; level: number });
        cb();
      },
    });
    const logger = pino(sink);
    let paused = false;
    let failed = 0;
    const auto = new AutoRestorePoints({
      config: () => config,
      logger: () => logger,
      paused: () => paused,
      taken: () => assert.fail('no point can be taken here'),
      failed: () => failed++,
    });
    const said = (re: RegExp) => lines.filter((l) => re.test(l.msg)).length;
    auto.plan();
    assert.equal(said(/^automatic restore points every 1s/), 1);
    await until('a slot on a host without a spider instance', () => said(/no spider instance config/) === 1);
    paused = true;
    await until('a slot while paused', () => said(/while paused/) === 1);
    paused = false;
    // The same reason is said once until it changes.
    await until('the reason changing back', () => said(/no spider instance config/) === 2);
    auto.plan(); // nothing changed: nothing happens
    assert.equal(said(/^automatic restore points every/), 1);
    config = { ...config, schedule: { ...config.schedule, restorePointIntervalMs: 2000 } };
    auto.plan();
    assert.equal(said(/^automatic restore points every 2s/), 1);
    config = { ...config, schedule: { ...config.schedule, restorePointIntervalMs: undefined } };
    auto.plan();
    assert.equal(said(/^automatic restore points off$/), 1);
    await auto.stop(5000);
    assert.equal(failed, 0);
    assert.ok(lines.every((l) => l.level < 50));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
