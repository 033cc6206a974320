// Small frictions of the CLI: one-line usage errors, `logs` never reading a stdin it was not given,
// NO_COLOR, plain tables when stdout is not a terminal, and `[schedule] tdbctl` (used; named when
// unreachable). Terminals are real: util-linux `script` runs the CLI on a pseudo-terminal.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, ADMIN_USER, TdbctlStandIn } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster } from './support/cluster.js';
import { freePort } from './support/daemon.js';
import { CLI, Workspace } from './support/workspace.js';

const BOX = /[┌┐└┘│─┬┴┼├┤]/;
const ANSI = /\x1b\[/; // eslint-disable-line no-control-regex -- looking for escape sequences is the point

/**
 * Runs the CLI on a pseudo-terminal (stdin and stdout a TTY); resolves with what the terminal
 * showed. Asynchronous: the tdbctl stand-in the CLI talks to runs in this process.
 */
function onTerminal(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string }> {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qec', quoted, '/dev/null'], {
    env: { ...process.env, NO_COLOR: '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 60_000,
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

describe('usage errors and logs', { timeout: 120_000 }, () => {
  it('a usage error prints one line and where the help is, exit 2', () => {
    for (const [args, hint] of [
      [['check', '--bogus'], '(see spiderbackup check --help)'],
      [['nosuch'], '(see spiderbackup --help)'],
      [['sandbox', 'run', '--tick'], '(see spiderbackup sandbox run --help)'],
    ] as const) {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 2, args.join(' '));
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 2, r.stderr);
      assert.match(lines[0] as string, /^spiderbackup: error: /);
      assert.equal(lines[1], hint);
      assert.doesNotMatch(r.stderr + r.stdout, /Usage:/);
    }
  });

  it('logs without [log] file and without --file - refuses at once, even on a pipe nobody writes to', async () => {
    const ws = new Workspace();
    try {
      // stdin is a pipe left open: reading it would wait forever.
      const child = spawn(process.execPath, [CLI, '--agent-config', ws.agentIni, 'logs'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      child.stdin.destroy();
      assert.equal(code, 2);
      assert.match(stderr, /no \[log\] file is configured.*--file -/);
      // With an explicit `-` it reads stdin.
      const line = JSON.stringify({ level: 30, time: 1, pid: 1, backupId: 'b-1', msg: 'hello from stdin' });
      const r = spawnSync(process.execPath, [CLI, '--agent-config', ws.agentIni, 'logs', '--file', '-', '--json'], {
        input: `${line}\n`,
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), line);
    } finally {
      ws.close();
    }
  });

  it('logs colours a terminal, but not with NO_COLOR', async () => {
    const ws = new Workspace();
    try {
      const file = join(ws.dir, 'agent.log');
      writeFileSync(file, `${JSON.stringify({ level: 50, time: Date.now(), pid: 1, msg: 'something failed' })}\n`);
      const coloured = await onTerminal(['logs', '--file', file]);
      assert.equal(coloured.code, 0, coloured.output);
      assert.match(coloured.output, /something failed/);
      assert.match(coloured.output, ANSI);
      const plain = await onTerminal(['logs', '--file', file], { NO_COLOR: '1' });
      assert.equal(plain.code, 0, plain.output);
      assert.match(plain.output, /something failed/);
      assert.doesNotMatch(plain.output, ANSI);
    } finally {
      ws.close();
    }
  });
});

describe('[schedule] tdbctl and tables', { timeout: 240_000 }, () => {
  let cluster: TestCluster<'ws'>;
  let ws: Workspace;
  /** A second tdbctl in front of the same database, elsewhere; the one at spider port + 1000 says "not primary". */
  let other: TdbctlStandIn;

  before(async () => {
    cluster = await setUpCluster({ tdbctl: true, workspaces: { ws: { serves: ['spider0'] } } });
    ({ ws } = cluster.workspaces);
    const node = cluster.tdbctlNode;
    assert.ok(node && cluster.tdbctl);
    const [row] = await cluster.query<{ port: number }>(node, 'SELECT @@port AS port');
    const port = Number(row?.port);
    const credentials = { user: ADMIN_USER, password: ADMIN_PASSWORD };
    other = new TdbctlStandIn({
      host: '127.0.0.1',
      port: await freePort(),
      ...credentials,
      backend: { host: node.host, port, ...credentials },
    });
    await other.start();
    cluster.tdbctl.setPrimary(false);
  });

  after(async () => {
    await other?.close();
    await cluster?.close();
  });

  it('uses the tdbctl address of the agent config instead of spider port + 1000', async () => {
    ws.writeAgentConfig({ schedule: { tdbctl: `127.0.0.1:${other.port}` } });
    const s = await ws.cli('schedule', '--backup-id', 'fr-1');
    assert.equal(s.code, 0, s.stderr + s.stdout);
    assert.match(s.stdout, /scheduled backup id fr-1/);
    const q = await ws.cli('query', '--BackupId', 'fr-1');
    assert.equal(q.code, 0, q.stderr);

    // Piped: plain columns, no border characters.
    assert.doesNotMatch(q.stdout, BOX);
    const [head, ...rows] = q.stdout.trimEnd().split('\n');
    assert.match(head as string, /^BackupId\s{2,}ServerName\s{2,}BackupStatus\s{2,}Host\s{2,}Port\s{2,}ShardValue\s{2,}CreatedAt\s*$/);
    assert.equal(rows.filter((r) => /^fr-1\s{2,}\S+\s{2,}init\s/.test(r)).length, 3, q.stdout); // spider + 2 shard masters
    // On a terminal: the box-drawn table.
    const t = await onTerminal(['--agent-config', ws.agentIni, 'query', '--BackupId', 'fr-1']);
    assert.equal(t.code, 0, t.output);
    assert.match(t.output, BOX);

    // Without the setting: the tdbctl at spider port + 1000, which says this node is not primary:
    // the same rows, read on the shard masters, and stderr says so.
    ws.writeAgentConfig();
    const q2 = await ws.cli('query', '--BackupId', 'fr-1');
    assert.equal(q2.code, 0, q2.stderr);
    assert.match(q2.stderr, /is not the primary spider node \(tdbctl get primary\): read the shard masters directly/);
    assert.equal(q2.stdout, q.stdout);
  });

  it('names an unreachable tdbctl as such, with where its address came from', async () => {
    const closed = await freePort();
    ws.writeAgentConfig({ schedule: { tdbctl: `127.0.0.1:${closed}` } });
    const r = await ws.cli('query');
    assert.equal(r.code, 1);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0] as string,
      new RegExp(
        `^spiderbackup: 127\\.0\\.0\\.1:${closed}: the tdbctl node cannot be reached \\(\\[schedule\\] tdbctl in .*spiderbackup\\.ini\\): `,
      ),
    );

    ws.writeAgentConfig({ schedule: { tdbctl: 'not-an-address' } });
    const bad = await ws.cli('query');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /spiderbackup\.ini: \[schedule\] tdbctl = "not-an-address": must be host:port/);
  });
});
