// Puts a backup taken into BackupDir into the repository as a runner writing there would (the
// files with upload(), the manifest last with putObject: issue 18's contract), then removes the
// host's copies. Until the runners upload themselves; a backup already in the repository is left
// as it is, so tests keep working once they do.
import { createReadStream, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { instanceKey, MANIFEST_OBJECT, upload, type Repository } from '../../src/repo/repository.js';
import { manifestText, type Manifest } from '../../src/runner/manifest.js';

/** Every `<host>_<port>` of `<backupDir>/<id>/` uploaded (unless its manifest is there already), then the local directory removed. */
export async function moveToRepository(
  repo: Repository,
  backupDir: string,
  backupId: string,
  /**
   * Encrypted: the manifest changes (the stored bytes' sizes and sha256, the key id), as a runner
   * writing into the repository would publish it; called with the new text to publish.
   */
  onManifest?: (host: string, port: number, text: string) => Promise<void>,
): Promise<string[]> {
  const dir = join(backupDir, backupId);
  if (!existsSync(dir)) return [];
  const moved: string[] = [];
  for (const name of readdirSync(dir)) {
    const m = /^(.+)_(\d+)$/.exec(name);
    if (!m) continue;
    const local = join(dir, name);
    const text = readFileSync(join(local, 'manifest.json'), 'utf8');
    const manifest = JSON.parse(text) as Manifest;
    const base = instanceKey(repo, backupId, m[1] as string, Number(m[2]));
    if (!(await repo.store.stat(`${base}${MANIFEST_OBJECT}`))) {
      for (const f of manifest.files) {
        const up = await upload(repo, `${base}${f.name}`, createReadStream(join(local, f.name)));
        if (!repo.key && (up.sha256 !== f.sha256 || up.bytes !== f.bytes))
          throw new Error(`${local}/${f.name}: uploaded bytes differ from its manifest`);
        f.sha256 = up.sha256;
        f.bytes = up.bytes;
      }
      let stored = text;
      if (repo.key) {
        stored = manifestText({
          ...manifest,
          bytes: manifest.files.reduce((n, f) => n + f.bytes, 0),
          encryption: { keyId: repo.key.id },
        } as Manifest);
        await onManifest?.(m[1] as string, Number(m[2]), stored);
      }
      await repo.store.putObject(`${base}${MANIFEST_OBJECT}`, Buffer.from(stored));
      moved.push(name);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return moved;
}
