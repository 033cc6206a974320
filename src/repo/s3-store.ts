// A repository in an S3-compatible bucket. To be built (@aws-sdk/client-s3 + lib-storage).
import type { Readable } from 'node:stream';
import type { S3StoreConfig } from '../config/repository.js';
import { RepoError, type PutStreamOptions, type Store, type StoredObject } from './store.js';

export class S3Store implements Store {
  readonly where: string;
  constructor(
    private readonly config: S3StoreConfig,
    private readonly partSize: number,
  ) {
    this.where = `s3 bucket ${config.bucket}${config.endpoint ? ` at ${config.endpoint}` : ''}`;
  }
  private no(): never {
    throw new RepoError(`${this.where}: the S3 store is not built yet (part size ${this.partSize}, ${this.config.region})`);
  }
  check(): Promise<void> {
    this.no();
  }
  putStream(_key: string, _body: Readable, _opts?: PutStreamOptions): Promise<{ bytes: number }> {
    this.no();
  }
  putObject(_key: string, _data: Buffer): Promise<void> {
    this.no();
  }
  getStream(_key: string): Promise<Readable> {
    this.no();
  }
  getObject(_key: string): Promise<Buffer | undefined> {
    this.no();
  }
  stat(_key: string): Promise<StoredObject | undefined> {
    this.no();
  }
  list(_prefix: string): Promise<StoredObject[]> {
    this.no();
  }
  remove(_keys: readonly string[]): Promise<void> {
    this.no();
  }
  cleanIncomplete(_prefix: string): Promise<string[]> {
    this.no();
  }
}
