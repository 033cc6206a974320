// A process that uploads an endless stream into an S3 store until it is killed: what a backup
// killed mid-upload leaves behind (an incomplete multipart upload, no object). Prints "started"
// once the first part is on its way. argv: the store config as JSON, the part size, the key.
import { Readable } from 'node:stream';
import type { S3StoreConfig } from '../../src/config/repository.js';
import { S3Store } from '../../src/repo/s3-store.js';

const [configJson, partSize, key] = process.argv.slice(2) as [string, string, string];
const store = new S3Store(JSON.parse(configJson) as S3StoreConfig, Number(partSize));
let sent = 0;
const body = new Readable({
  read() {
    sent += 65536;
    if (sent === 65536 * Math.ceil(Number(partSize) / 65536 + 1)) process.stdout.write('started\n');
    this.push(Buffer.alloc(65536, sent % 251));
  },
});
await store.putStream(key, body);
