// The self-contained release (`npm run package`) on a host without Node.js and without a registry:
// the tarball unpacked as the README installs it (/opt/spiderbackup/<version>, a `current` symlink,
// /usr/bin/spiderbackup linking to the launcher through it), every command run in a private mount
// namespace where each system node is hidden under an empty file, against a real cluster.
//
// The tarball: release/spiderbackup-<version>-linux-x64.tar.gz when it is there and holds exactly
// this build (dist/src, package.json, package-lock.json, launcher, configs, unit, README, pinned
// Node), else a fresh one built into a temporary directory (`node dist/scripts/package.js --out`,
// never `npm run package`: that would rebuild dist/ under the test file running beside this one).
// Building needs the npm registry or an npm cache holding the packages; running it needs neither.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster } from './support/cluster.js';
import { insertTasks, statusOf, taskOf } from './support/tasks.js';
import { FAKE_BACKUP, pidAlive, waitFor, type Workspace } from './support/workspace.js';
import { DaemonProcess } from './support/daemon.js';
import { LAYOUT, NODE_RUNTIME, releaseName, type ReleaseInfo } from '../scripts/release.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const NAME = releaseName(VERSION);
const PREBUILT = join(REPO, 'release', `${NAME}.tar.gz`);
/** Building takes about half a minute here, longer beside another test file; then it has hung. */
const BUILD_TIMEOUT_MS = 200_000;
/** Any one command of the release; the daemon runs until stopped. */
const COMMAND_TIMEOUT_MS = 60_000;

/** Every executable called `cmd` in a PATH directory. */
function onPath(cmd: string): string[] {
  const found: string[] = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      const f = join(dir, cmd);
      accessSync(f, constants.X_OK);
      if (statSync(f).isFile()) found.push(f);
    } catch {
      // not here
    }
  }
  return found;
}

const skip =
  process.getuid?.() !== 0
    ? 'needs root: hides the system node with bind mounts in a private mount namespace (unshare -m)'
    : onPath('unshare').length === 0 || onPath('mount').length === 0
      ? 'needs unshare(1) and mount(8) (util-linux) to hide the system node'
      : false;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs argv to its end, killing it (its whole process group) after timeoutMs: never hangs. */
function runToEnd(argv: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Result> {
  const [file, ...args] = argv as [string, ...string[]];
  const child = spawn(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => {
    stderr += `\n[test: killed after ${opts.timeoutMs ?? COMMAND_TIMEOUT_MS} ms]`;
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  }, opts.timeoutMs ?? COMMAND_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${err.message}` });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * In the namespace: bind the empty file ($1) over every system node ($2, separated by ':'), make
 * sure `node` is no longer found, then exec the command (the rest). Exit 97: a mount failed; 98: a
 * node is still found.
 */
const HIDE_NODES = `
empty=$1 nodes=$2
shift 2
IFS=:
for n in $nodes; do mount --bind "$empty" "$n" || exit 97; done
unset IFS
if command -v node >/dev/null 2>&1; then echo "release test: a node is still on PATH: $(command -v node)" >&2; exit 98; fi
exec "$@"
`;

let tmp: string;
/** The release as installed: tmp/opt/spiderbackup/<version> (physical), reached through current. */
let root: string;
let bundledNode: string;
/** tmp/usr/bin/spiderbackup -> tmp/opt/spiderbackup/current/bin/spiderbackup */
let sb: string;
let emptyFile: string;
let hidden: string[];
let source: string;
let cluster: TestCluster | undefined;
let m0: Instance;

/** argv running `command` in a new mount namespace (and, with network: false, a new network namespace too). */
function inNamespace(command: readonly string[], opts: { network?: boolean } = {}): string[] {
  const net = opts.network === false ? ['-n'] : [];
  return ['unshare', '-m', ...net, '--', '/bin/sh', '-c', HIDE_NODES, 'sh', emptyFile, hidden.join(':'), ...command];
}

function runHidden(command: readonly string[], opts: { network?: boolean; cwd?: string } = {}): Promise<Result> {
  return runToEnd(inNamespace(command, opts), { cwd: opts.cwd ?? tmp });
}

/** Every file under dir, as relative paths. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Why an unpacked release is not this build (undefined: it is). */
function staleness(dir: string): string | undefined {
  const same = (inRelease: string, inRepo: string) =>
    existsSync(join(dir, inRelease)) && readFileSync(join(dir, inRelease)).equals(readFileSync(join(REPO, inRepo)));
  const pairs: [string, string][] = [
    ['package.json', 'package.json'],
    ['package-lock.json', 'package-lock.json'],
    ['README.md', 'README.md'],
    [LAYOUT.launcher, 'scripts/launcher.sh'],
  ];
  for (const d of ['config', 'systemd']) for (const f of readdirSync(join(REPO, d))) pairs.push([join(d, f), join(d, f)]);
  for (const [a, b] of pairs) if (!same(a, b)) return `${a} differs`;
  const built = filesUnder(join(REPO, 'dist/src'));
  if (!existsSync(join(dir, 'dist/src')) || filesUnder(join(dir, 'dist/src')).join('\n') !== built.join('\n'))
    return 'dist/src has other files';
  for (const f of built) if (!same(join('dist/src', f), join('dist/src', f))) return `dist/src/${f} differs`;
  const info = JSON.parse(readFileSync(join(dir, LAYOUT.info), 'utf8')) as ReleaseInfo;
  if (info.node !== NODE_RUNTIME.version) return `Node ${info.node}, not ${NODE_RUNTIME.version}`;
  return undefined;
}

async function unpack(tarball: string, into: string): Promise<void> {
  mkdirSync(into, { recursive: true });
  const r = await runToEnd(['tar', '-xzf', tarball, '-C', into, '--strip-components=1']);
  assert.equal(r.code, 0, `tar: ${r.stderr}`);
}

/** Unpacks the tarball into tmp/opt/spiderbackup/<version>: the prebuilt one if it is this build, else a new one. */
async function install(): Promise<void> {
  const target = join(tmp, 'opt/spiderbackup', VERSION);
  if (existsSync(PREBUILT)) {
    await unpack(PREBUILT, target);
    const why = staleness(target);
    if (why === undefined) {
      source = `prebuilt ${PREBUILT}`;
      return;
    }
    source = `built: the prebuilt tarball is stale (${why})`;
    rmSync(target, { recursive: true, force: true });
  } else {
    source = 'built: no prebuilt tarball';
  }
  // The build's staging directory (and npm's temporary files) go under tmp, removed with it even
  // if the build is killed.
  mkdirSync(join(tmp, 'tmp'));
  const r = await runToEnd([process.execPath, join(REPO, 'dist/scripts/package.js'), '--out', join(tmp, 'build')], {
    cwd: REPO,
    env: { ...process.env, TMPDIR: join(tmp, 'tmp') },
    timeoutMs: BUILD_TIMEOUT_MS,
  });
  assert.equal(r.code, 0, `packaging failed:\n${r.stderr}\n${r.stdout}`);
  await unpack(join(tmp, 'build', `${NAME}.tar.gz`), target);
  assert.equal(staleness(target), undefined, 'the new tarball holds this build');
}

describe('the release tarball on a host without Node.js', { skip }, () => {
  before(
    async () => {
      tmp = mkdtempSync(join(tmpdir(), 'sb-release-'));
      // The cluster starts while the tarball is built; neither is left behind if the other fails.
      const [installed, started] = await Promise.allSettled([install(), setUpCluster({ shards: 1, slaves: [] })]);
      if (started.status === 'fulfilled') cluster = started.value;
      if (installed.status === 'rejected') throw installed.reason;
      if (started.status === 'rejected') throw started.reason;
      m0 = cluster!.masters[0]!;

      // As the README installs it: versioned directory, `current`, /usr/bin/spiderbackup.
      symlinkSync(VERSION, join(tmp, 'opt/spiderbackup/current'));
      mkdirSync(join(tmp, 'usr/bin'), { recursive: true });
      sb = join(tmp, 'usr/bin/spiderbackup');
      symlinkSync(join(tmp, 'opt/spiderbackup/current', LAYOUT.launcher), sb);
      root = realpathSync(join(tmp, 'opt/spiderbackup', VERSION));
      bundledNode = join(root, LAYOUT.node);

      emptyFile = join(tmp, 'empty');
      writeFileSync(emptyFile, '', { mode: 0o644 });
      hidden = [...new Set([...onPath('node'), process.execPath].map((p) => realpathSync(p)))];
    },
    { timeout: BUILD_TIMEOUT_MS + 60_000 },
  );

  after(async () => {
    await cluster?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test(
    'holds the compiled code without tests, the production dependencies, the pinned Node, configs, unit, README',
    { timeout: 60_000 },
    async (t) => {
      t.diagnostic(`tarball: ${source}`);
      for (const f of [LAYOUT.launcher, LAYOUT.node, LAYOUT.cli, 'dist/src/bin/supervisor.js', 'README.md', 'package-lock.json']) {
        assert.ok(existsSync(join(root, f)), `${f} in the release`);
      }
      for (const f of [
        'config/spiderbackup.ini',
        'config/dbbackup.20000.ini',
        'systemd/spiderbackup.service',
        'systemd/spiderbackup.tmpfiles',
      ]) {
        assert.ok(existsSync(join(root, f)), `${f} in the release`);
      }
      assert.deepEqual(readdirSync(join(root, 'dist')), ['src'], 'dist/src only: no tests, benches or scripts');
      // Exactly the lockfile's production packages at its versions; none of its dev-only ones.
      const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { version?: string; dev?: boolean; optional?: boolean }>;
      };
      let production = 0;
      for (const [path, entry] of Object.entries(lock.packages)) {
        if (path === '') continue;
        if (entry.dev) {
          assert.ok(!existsSync(join(root, path)), `no dev dependency ${path}`);
        } else if (!entry.optional) {
          production++;
          const manifest = join(root, path, 'package.json');
          assert.ok(existsSync(manifest), `production dependency ${path}`);
          assert.equal(
            (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version,
            entry.version,
            `${path} at the locked version`,
          );
        }
      }
      assert.ok(production > 0);
      assert.ok(!existsSync(join(root, 'node_modules/typescript')), 'no compiler');
      const info = JSON.parse(readFileSync(join(root, LAYOUT.info), 'utf8')) as ReleaseInfo;
      assert.equal(info.version, VERSION);
      assert.equal(info.node, NODE_RUNTIME.version);
      assert.ok(statSync(join(root, LAYOUT.launcher)).mode & 0o111, 'the launcher is executable');
    },
  );

  test(
    'inside the namespace no node is found; the launcher, through its symlinks and without a network, needs none',
    { timeout: 120_000 },
    async () => {
      assert.ok(hidden.length > 0, 'this test runs on a system node, which is hidden');
      const probe = await runHidden(['/bin/sh', '-c', 'command -v node || echo "no node"; node --version'], { network: false });
      assert.match(probe.stdout, /^no node$/m, probe.stderr);
      assert.notEqual(probe.code, 0, 'running node fails');
      for (const n of hidden) {
        const r = await runHidden([n, '--version']);
        assert.notEqual(r.code, 0, `${n} cannot run: ${r.stdout}`);
      }

      const version = await runHidden([sb, '--version'], { network: false });
      assert.equal(version.code, 0, version.stderr);
      assert.equal(version.stdout.trim(), VERSION);
      const node = await runHidden([bundledNode, '--version'], { network: false });
      assert.equal(node.stdout.trim(), `v${NODE_RUNTIME.version}`);
      // A relative symlink chain, and the launcher run by sh from its own directory.
      const chain = join(tmp, 'usr/bin/sb-chain');
      symlinkSync('spiderbackup', chain);
      const viaChain = await runHidden([chain, '--help'], { network: false });
      assert.equal(viaChain.code, 0, viaChain.stderr);
      assert.match(viaChain.stdout, /Usage: spiderbackup/);
      const bySh = await runHidden(['/bin/sh', 'spiderbackup', '--version'], { network: false, cwd: join(root, 'bin') });
      assert.equal(bySh.stdout.trim(), VERSION, bySh.stderr);
    },
  );

  describe('against a real cluster', () => {
    let ws: Workspace | undefined;
    const daemons: DaemonProcess[] = [];

    /** A workspace whose fake backup runs on the bundled node (the test's own is hidden in the namespace). */
    function workspace(): Workspace {
      const w = cluster!.workspace({ serves: [m0] });
      const fake = `${bundledNode} ${FAKE_BACKUP} --dir ${w.dir}`;
      w.writeAgentConfig({
        backup: {
          remote_command: `${fake} --kind remote --config {config} --backup-id {backup_id} --shard-value {shard_value} --port {port}`,
        },
      });
      return w;
    }

    /** The daemon of the release as systemd runs it: /usr/bin/spiderbackup daemon, in the namespace. */
    function startDaemon(w: Workspace): DaemonProcess {
      const d = new DaemonProcess(w, inNamespace([sb, 'daemon', '--agent-config', w.agentIni]));
      daemons.push(d);
      return d;
    }

    after(async () => {
      try {
        if (ws) {
          ws.release(m0.port);
          const w = ws;
          await waitFor('every backup to end', () => w.runs().every((r) => !pidAlive(r.pid)), 30_000).catch(() => {});
        }
      } finally {
        for (const d of daemons) await d.dispose();
        ws?.close();
      }
    });

    test('check lists the backup it would run', { timeout: 120_000 }, async () => {
      const w = workspace();
      try {
        await insertTasks(cluster!, [{ backupId: 'rel-check', for: m0 }]);
        const r = await runHidden([sb, '--agent-config', w.agentIni, 'check', '--format', 'json'], { cwd: w.dir });
        assert.equal(r.code, 0, r.stderr);
        const out = JSON.parse(r.stdout) as { wouldRun: { Port: number; command: string[] }[] };
        assert.deepEqual(
          out.wouldRun.map((x) => x.Port),
          [m0.port],
        );
        assert.equal(out.wouldRun[0]?.command[0], bundledNode);
        const table = await runHidden([sb, '--agent-config', w.agentIni, 'check'], { cwd: w.dir });
        assert.equal(table.code, 0, table.stderr);
        assert.match(table.stdout, /Would back up, one after another \(backup id rel-check\)/);
        assert.equal(await statusOf(cluster!, m0, 'rel-check'), 'init', 'check without --run changes nothing');
        await cluster!.exec(m0, "UPDATE infodba_schema.global_backup SET BackupStatus = 'cancel' WHERE BackupId = 'rel-check'");
      } finally {
        w.close();
      }
    });

    test(
      'the daemon runs a backup to success on the bundled node, and an upgrade (new version beside, switch current, restart) ' +
        'leaves the running supervisor on its own version',
      { timeout: 180_000 },
      async () => {
        ws = workspace();
        const w = ws;
        w.behave(m0.port, { block: true });
        await insertTasks(cluster!, [{ backupId: 'rel-daemon', for: m0 }]);
        const d = startDaemon(w);
        const run = await waitFor(
          'the backup to start',
          () => {
            if (d.child.exitCode !== null) throw new Error(`daemon exited with ${d.child.exitCode}: ${d.stderr}`);
            return w.runs()[0];
          },
          60_000,
        );
        const supervisor = await waitFor('the supervisor pid in the row', async () => {
          const task = await taskOf(cluster!, m0, 'rel-daemon');
          return task && task.TaskPid > 0 ? task.TaskPid : undefined;
        });
        // Physical paths of this version: the launcher resolved /usr/bin/spiderbackup and `current`.
        for (const [what, pid] of [
          ['daemon', d.pid],
          ['supervisor', supervisor],
          ['backup', run.pid],
        ] as const) {
          assert.equal(readlinkSync(`/proc/${pid}/exe`), bundledNode, `the ${what} runs on the bundled node`);
        }
        const argv = readFileSync(`/proc/${supervisor}/cmdline`, 'utf8').split('\0');
        assert.equal(argv[0], bundledNode);
        assert.equal(argv[1], join(root, 'dist/src/bin/supervisor.js'));
        await d.waitLog('task claimed; backup handed to its supervisor'); // the daemon logged the claim (through a pipe)

        // The README's upgrade, while the backup runs: the next version beside this one (the same
        // files, hard-linked), `current` switched by a rename, the daemon restarted.
        const next = join(tmp, 'opt/spiderbackup', `${VERSION}-next`);
        const copied = await runToEnd(['cp', '-al', root, next]);
        assert.equal(copied.code, 0, copied.stderr);
        symlinkSync(`${VERSION}-next`, join(tmp, 'opt/spiderbackup/current.new'));
        renameSync(join(tmp, 'opt/spiderbackup/current.new'), join(tmp, 'opt/spiderbackup/current'));
        d.signal('SIGTERM');
        assert.equal((await d.exited).code, 0, d.stderr);
        assert.ok(pidAlive(supervisor) && pidAlive(run.pid), 'stopping the daemon leaves the backup running');

        const d2 = startDaemon(w);
        await d2.ready();
        assert.equal(readlinkSync(`/proc/${d2.pid}/exe`), join(next, LAYOUT.node), 'the new daemon runs the new version');
        await d2.ticks(2);
        assert.equal(readlinkSync(`/proc/${supervisor}/exe`), bundledNode, 'the supervisor still runs on its own version');
        assert.equal(w.runs().length, 1, 'the new daemon started nothing beside the running backup');
        assert.equal(await statusOf(cluster!, m0, 'rel-daemon'), 'running');

        w.release(m0.port);
        await waitFor('success', async () => (await statusOf(cluster!, m0, 'rel-daemon')) === 'success', 60_000);
        d2.signal('SIGTERM');
        assert.equal((await d2.exited).code, 0, d2.stderr);
      },
    );
  });
});
