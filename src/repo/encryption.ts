// Client-side authenticated encryption of repository objects (README "Repository"). To be built:
// AES-256-GCM per 1 MiB segment, nonce = random prefix + segment counter, last-segment flag in the
// associated data, a header with the format version and the key's id.
import { Transform } from 'node:stream';
import { RepoError } from './store.js';

export interface RepoKey {
  /** Short public id of the key (in the header and the manifest): names the key without revealing it. */
  id: string;
  key: Buffer;
  /** The key file, for messages. */
  file: string;
}

/** Reads a key file: owner-only, 32 raw bytes or 64 hex characters. */
export function loadRepoKey(file: string): RepoKey {
  throw new RepoError(`encryption is not built yet (${file})`);
}

export function encryptStream(key: RepoKey): Transform {
  throw new RepoError(`encryption is not built yet (${key.file})`);
}

/** Decrypts with whichever of `keys` the header names; a header naming none of them is a RepoError naming the key files. */
export function decryptStream(keys: readonly RepoKey[]): Transform {
  throw new RepoError(`encryption is not built yet (${keys.map((k) => k.file).join(', ')})`);
}

/** The key id in an object's first bytes, or undefined when the object is not encrypted. */
export function storedKeyId(head: Buffer): string | undefined {
  void head;
  return undefined;
}
