// A repository in a directory every host mounts (NFS, CIFS, or a local path in tests and the
// demo). An object is a file; one being written has a `.partial` name and is renamed when whole,
// so a reader never takes a half-written file for a complete one.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorMessage } from '../errors.js';
import { fsyncDir, writeFileAtomic } from '../fs.js';
import { checkKey, NOT_FOUND, RepoError, type PutStreamOptions, type Store, type StoredObject } from './store.js';

export const PARTIAL_SUFFIX = '.partial';
const DIR_MODE = 0o750;
const FILE_MODE = 0o640;

export class PosixStore implements Store {
  readonly where: string;
  constructor(private readonly root: string) {
    this.where = `posix ${root}`;
  }

  async check(): Promise<void> {
    let s;
    try {
      s = await stat(this.root);
    } catch (err) {
      throw this.error(`cannot use ${this.root}`, err);
    }
    if (!s.isDirectory()) throw new RepoError(`${this.where}: ${this.root} is not a directory`, 'ENOTDIR');
    // Writable, as every backup will need: a probe file, removed at once.
    const probe = join(this.root, `.probe.${process.pid}${PARTIAL_SUFFIX}`);
    try {
      await (await open(probe, 'w', FILE_MODE)).close();
    } catch (err) {
      throw this.error(`cannot write into ${this.root}`, err);
    } finally {
      await rm(probe, { force: true });
    }
  }

  async putStream(key: string, body: Readable, opts: PutStreamOptions = {}): Promise<{ bytes: number }> {
    const path = this.path(key);
    const partial = `${path}${PARTIAL_SUFFIX}`;
    await this.mkdirFor(path);
    let done = false;
    try {
      await pipeline(body, createWriteStream(partial, { mode: FILE_MODE }), opts.signal ? { signal: opts.signal } : {});
      // Reopened to fsync: a FileHandle lent to a write stream cannot be closed by its owner.
      const file = await open(partial, 'r+');
      try {
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(partial, path);
      fsyncDir(dirname(path));
      done = true;
    } catch (err) {
      throw this.error(`cannot write ${path}`, err);
    } finally {
      if (!done) await rm(partial, { force: true });
    }
    return { bytes: (await stat(path)).size };
  }

  async putObject(key: string, data: Buffer): Promise<void> {
    const path = this.path(key);
    try {
      await this.mkdirFor(path);
      writeFileAtomic(path, data, { mode: FILE_MODE, durable: true });
    } catch (err) {
      throw this.error(`cannot write ${path}`, err);
    }
  }

  async getStream(key: string): Promise<Readable> {
    const path = this.path(key);
    // Opened here, so a missing file is this call's error and not a later stream event.
    const file = await open(path, 'r').catch((err: unknown) => {
      throw this.error(`cannot read ${path}`, err);
    });
    return createReadStream('', { fd: file });
  }

  async getObject(key: string): Promise<Buffer | undefined> {
    const path = this.path(key);
    try {
      return await readFile(path);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.error(`cannot read ${path}`, err);
    }
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    const path = this.path(key);
    try {
      const s = await stat(path);
      return s.isFile() ? { key, bytes: s.size, modified: s.mtime } : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.error(`cannot read ${path}`, err);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    await this.walk(
      this.root,
      async (path) => {
        const key = this.keyOf(path);
        if (!key.startsWith(prefix) || path.endsWith(PARTIAL_SUFFIX)) return;
        const s = await stat(path).catch(() => undefined);
        if (s?.isFile()) found.push({ key, bytes: s.size, modified: s.mtime });
      },
      prefix,
    );
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(keys: readonly string[]): Promise<void> {
    const dirs = new Set<string>();
    for (const key of keys) {
      const path = this.path(key);
      await rm(path, { force: true }).catch((err: unknown) => {
        throw this.error(`cannot delete ${path}`, err);
      });
      dirs.add(dirname(path));
    }
    // Empty directories left behind go too, up to the root, so an expired backup leaves nothing.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await this.pruneEmpty(dir);
  }

  async cleanIncomplete(prefix: string): Promise<string[]> {
    const removed: string[] = [];
    await this.walk(
      this.root,
      async (path) => {
        if (!path.endsWith(PARTIAL_SUFFIX) || !this.keyOf(path).startsWith(prefix)) return;
        await rm(path, { force: true });
        removed.push(this.keyOf(path));
      },
      prefix,
    );
    return removed;
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  private keyOf(path: string): string {
    return relative(this.root, path).split(sep).join('/');
  }

  private async mkdirFor(path: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true, mode: DIR_MODE }).catch((err: unknown) => {
      throw this.error(`cannot create ${dirname(path)}`, err);
    });
  }

  /** Visits the files below the directories that can hold keys starting with `prefix`. */
  private async walk(dir: string, visit: (path: string) => Promise<void>, prefix: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw this.error(`cannot list ${dir}`, err);
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      const key = this.keyOf(path);
      if (e.isDirectory()) {
        // Only directories on the way to the prefix, or inside it.
        if (prefix.startsWith(`${key}/`) || key.startsWith(prefix) || `${key}/`.startsWith(prefix)) await this.walk(path, visit, prefix);
      } else if (e.isFile()) await visit(path);
    }
  }

  private async pruneEmpty(dir: string): Promise<void> {
    for (let d = dir; d !== this.root && d.startsWith(this.root + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
    }
  }

  private error(what: string, err: unknown): RepoError {
    const code = (err as NodeJS.ErrnoException).code;
    return new RepoError(`${this.where}: ${what}: ${errorMessage(err)}`, isMissing(err) ? NOT_FOUND : code, { cause: err });
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
