// A repository in an S3-compatible bucket (AWS, MinIO, Ceph, OpenStack Swift's s3api). Objects
// are written with multipart uploads that become visible only when completed, so a killed upload
// leaves no object, only an incomplete upload that cleanIncomplete aborts. Memory stays bounded:
// at most a few parts are buffered, never a whole file.
//
// Compatibility choices, each for a real store: no `aws-chunked` bodies or default checksums
// (Swift's s3api 2.30 rejects them), a Content-MD5 on DeleteObjects (Swift requires it, AWS accepts
// it), single deletes when a store refuses batch deletes.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3StoreConfig } from '../config/repository.js';
import { errorMessage } from '../errors.js';
import { checkKey, NOT_FOUND, RepoError, type PutStreamOptions, type Store, type StoredObject } from './store.js';

/** S3's limit per DeleteObjects request. */
const DELETE_BATCH = 1000;
/** Parts uploading at once: 2 overlaps reading the next part with sending one; memory ~ (2 + 1) parts. */
const QUEUE_SIZE = 2;
/** An unreachable store fails in seconds, not at the OS's TCP timeout. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Codes with which a store refuses batch deletes as such (not the keys in it). */
const NO_BATCH_DELETE = new Set(['NotImplemented', 'InvalidRequest', 'MissingContentMD5', 'MethodNotAllowed']);

export interface S3StoreOptions {
  /** Parts uploading at once (default 2). */
  queueSize?: number;
  /** Keys per listing request (default: the store's, 1,000 on S3). */
  pageSize?: number;
}

export class S3Store implements Store {
  readonly where: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly endpoint: string;
  private readonly queueSize: number;
  private readonly pageSize: number | undefined;

  constructor(
    private readonly config: S3StoreConfig,
    private readonly partSize: number,
    opts: S3StoreOptions = {},
  ) {
    this.bucket = config.bucket;
    this.endpoint = config.endpoint ?? `AWS S3 (${config.region})`;
    this.where = `s3 bucket ${config.bucket}${config.endpoint ? ` at ${config.endpoint}` : ''}`;
    this.queueSize = opts.queueSize ?? QUEUE_SIZE;
    this.pageSize = opts.pageSize;
    // The SDK warns on stderr about its future Node versions; an operator can do nothing about it
    // (the package pins the SDK), so it is not shown unless asked for.
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    const clientConfig: S3ClientConfig = {
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: secretOf(config) },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: CONNECT_TIMEOUT_MS,
        ...(config.caFile ? { httpsAgent: new HttpsAgent({ keepAlive: true, ca: readCa(config.caFile) }) } : {}),
      },
    };
    if (config.endpoint !== undefined) clientConfig.endpoint = config.endpoint;
    this.client = new S3Client(clientConfig);
    // DeleteObjects' body is a small XML document; Swift refuses it without a Content-MD5.
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const req = args.request as { headers?: Record<string, string>; body?: unknown };
        if (context.commandName === 'DeleteObjectsCommand' && req.headers && (typeof req.body === 'string' || Buffer.isBuffer(req.body)))
          req.headers['content-md5'] = createHash('md5').update(req.body).digest('base64');
        return next(args);
      },
      { step: 'build', name: 'spiderbackupContentMd5', override: true },
    );
  }

  /**
   * The bucket is there and these credentials may list it. A listing rather than HeadBucket: a
   * HEAD answer has no body, so a refusal would come without the store's reason
   * (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied).
   */
  async check(): Promise<void> {
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 }));
    } catch (err) {
      throw this.error('cannot use the bucket', err);
    }
  }

  async putStream(key: string, body: Readable, opts: PutStreamOptions = {}): Promise<{ bytes: number }> {
    checkKey(key);
    // An abort ends the body: the uploader then fails at its next part and aborts the multipart
    // upload before done() settles. (lib-storage's own abort settles done() at once and aborts
    // the multipart upload later, or never when its creation was still under way.)
    const onAbort = () => body.destroy(abortError(opts.signal));
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      body.destroy();
      throw this.error(`cannot write ${key}`, body.errored ?? err);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    // Aborted while its last request was on its way: the object came to be, and goes again.
    if (opts.signal?.aborted) {
      await this.remove([key]);
      throw this.error(`cannot write ${key}`, abortError(opts.signal));
    }
    const stored = await this.stat(key);
    if (stored === undefined) throw new RepoError(`${this.where}: ${key} is missing right after its upload completed`, NOT_FOUND);
    return { bytes: stored.bytes };
  }

  async putObject(key: string, data: Buffer): Promise<void> {
    checkKey(key);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: data, ContentLength: data.length }));
    } catch (err) {
      throw this.error(`cannot write ${key}`, err);
    }
  }

  async getStream(key: string): Promise<Readable> {
    checkKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body as Readable;
    } catch (err) {
      throw this.error(`cannot read ${key}`, err);
    }
  }

  async getObject(key: string): Promise<Buffer | undefined> {
    let stream: Readable;
    try {
      stream = await this.getStream(key);
    } catch (err) {
      if (err instanceof RepoError && err.code === NOT_FOUND) return undefined;
      throw err;
    }
    const chunks: Buffer[] = [];
    try {
      for await (const c of stream) chunks.push(c as Buffer);
    } catch (err) {
      throw this.error(`cannot read ${key}`, err);
    }
    return Buffer.concat(chunks);
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    checkKey(key);
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, bytes: h.ContentLength ?? 0, modified: h.LastModified ?? new Date(0) };
    } catch (err) {
      const e = this.error(`cannot read ${key}`, err);
      if (e.code === NOT_FOUND) return undefined;
      throw e;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(this.pageSize ? { MaxKeys: this.pageSize } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (err) {
        throw this.error(`cannot list ${prefix || '/'}`, err);
      }
      for (const o of page.Contents ?? [])
        if (o.Key !== undefined) found.push({ key: o.Key, bytes: o.Size ?? 0, modified: o.LastModified ?? new Date(0) });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(keys: readonly string[]): Promise<void> {
    for (const k of keys) checkKey(k);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      let out;
      try {
        out = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
        );
      } catch (err) {
        const e = this.error(`cannot delete ${batch.length} objects`, err);
        if (e.code === undefined || !NO_BATCH_DELETE.has(e.code)) throw e;
        await this.removeOneByOne(batch);
        continue;
      }
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0] as { Key?: string; Code?: string; Message?: string };
        throw new RepoError(
          `${this.where}: cannot delete ${failed.length} of ${batch.length} objects, e.g. ${first.Key}: ${first.Code} ${first.Message ?? ''}`.trim(),
          first.Code,
        );
      }
    }
  }

  private async removeOneByOne(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
      } catch (err) {
        const e = this.error(`cannot delete ${key}`, err);
        if (e.code !== NOT_FOUND) throw e;
      }
    }
  }

  async cleanIncomplete(prefix: string): Promise<string[]> {
    const removed: string[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    const pending: { Key: string; UploadId: string }[] = [];
    do {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(this.pageSize ? { MaxUploads: this.pageSize } : {}),
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(idMarker ? { UploadIdMarker: idMarker } : {}),
          }),
        );
      } catch (err) {
        throw this.error(`cannot list the incomplete uploads below ${prefix || '/'}`, err);
      }
      for (const u of page.Uploads ?? [])
        if (u.Key !== undefined && u.UploadId !== undefined) pending.push({ Key: u.Key, UploadId: u.UploadId });
      const more = page.IsTruncated === true && (page.NextKeyMarker !== undefined || page.NextUploadIdMarker !== undefined);
      keyMarker = more ? page.NextKeyMarker : undefined;
      idMarker = more ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined || idMarker !== undefined);
    // Listed first, aborted after: aborting while paging could shift the markers.
    for (const u of pending) {
      try {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
      } catch (err) {
        const e = this.error(`cannot abort the incomplete upload of ${u.Key}`, err);
        if (e.code !== NOT_FOUND && e.code !== 'NoSuchUpload') throw e;
      }
      removed.push(u.Key);
    }
    return removed;
  }

  /** Stops the client's connections (tests, commands that end). */
  close(): void {
    this.client.destroy();
  }

  /**
   * The store's answer as a RepoError: its code and HTTP status, what it means here, and the
   * access key id when it refused the credentials (never the secret).
   */
  private error(what: string, err: unknown): RepoError {
    const e = err as { name?: string; Code?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const named = e.Code ?? (e.name && !['Error', 'Unknown', 'UnknownError', 'AggregateError'].includes(e.name) ? e.name : undefined);
    if (status === undefined) {
      // No answer at all: the network (ECONNREFUSED, ENOTFOUND, a timeout), or our own abort.
      const network = (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) || named === 'TimeoutError';
      const code = typeof e.code === 'string' ? e.code : named;
      const text = errorMessage(err) || code || 'no answer';
      return network
        ? new RepoError(`${this.where}: ${what}: cannot reach ${this.endpoint}: ${text}`, code, { cause: err })
        : new RepoError(`${this.where}: ${what}: ${text}`, code, { cause: err });
    }
    if (named === 'NoSuchBucket')
      return new RepoError(`${this.where}: bucket ${this.bucket} does not exist at ${this.endpoint}`, 'NoSuchBucket', { cause: err });
    if (status === 404 || named === 'NoSuchKey' || named === 'NotFound')
      return new RepoError(`${this.where}: ${what}: not found`, NOT_FOUND, { cause: err });
    const reason = e.message && e.message !== 'UnknownError' && e.message !== named ? `: ${e.message}` : '';
    const who = status === 403 ? ` for access key id ${this.config.accessKeyId}` : '';
    return new RepoError(
      `${this.where}: ${what}: refused (HTTP ${status}${named ? ` ${named}` : ''})${who}${reason}`,
      named ?? `HTTP${status}`,
      {
        cause: err,
      },
    );
  }
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : Object.assign(new Error('the upload was aborted'), { name: 'AbortError' });
}

/** The secret inline, or from its file, which must be owner-only. Never part of a message. */
function secretOf(config: S3StoreConfig): string {
  if ('inline' in config.secret) return config.secret.inline;
  const file = config.secret.file;
  let mode: number;
  let text: string;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RepoError(`secret_access_key_file ${file}: cannot read it: ${errorMessage(err)}`, (err as NodeJS.ErrnoException).code, {
      cause: err,
    });
  }
  if ((mode & 0o077) !== 0)
    throw new RepoError(
      `secret_access_key_file ${file}: others can read it (mode ${(mode & 0o777).toString(8).padStart(3, '0')}): chmod 600 it`,
      'SecretFileRefused',
    );
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '' || /\s/.test(secret))
    throw new RepoError(`secret_access_key_file ${file}: must hold the secret on one line`, 'SecretFileRefused');
  return secret;
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new RepoError(`ca_file ${file}: cannot read it: ${errorMessage(err)}`, (err as NodeJS.ErrnoException).code, { cause: err });
  }
}
