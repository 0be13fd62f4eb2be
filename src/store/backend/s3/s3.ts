/**
 * The S3-compatible back end (AWS S3, MinIO, Ceph RGW; tested against s3rver): objects
 * under `s3://bucket/prefix/`. Every PUT and CompleteMultipartUpload is atomic in S3, which
 * is the one guarantee the store needs; reads after writes and listings are strongly
 * consistent on all three production targets.
 *
 * Objects above `multipartThreshold` are uploaded in parts (S3 refuses single PUTs above
 * 5 GiB and parts below 5 MiB); a failed multipart upload is aborted so no part is billed
 * forever (a bucket lifecycle rule "abort incomplete multipart uploads after N days" is the
 * backstop, see docs/store.md).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { FerryError, IoError, StoreTruncatedError } from '../../../errors/index.js';
import {
  byteLength,
  checkKey,
  checkPrefix,
  checkRange,
  missingObject,
  type Backend,
  type ByteRange,
  type ObjectInfo,
} from '../backend.js';

export interface S3BackendOptions {
  readonly bucket: string;
  /** Key prefix inside the bucket ("" or ending in "/"). */
  readonly prefix?: string;
  /** e.g. http://127.0.0.1:9000 for MinIO; default: AWS. */
  readonly endpoint?: string;
  readonly region?: string;
  /** Path-style URLs (MinIO, Ceph RGW and most self-hosted servers need them). */
  readonly forcePathStyle?: boolean;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Objects at least this big go up in parts (default 64 MiB). */
  readonly multipartThreshold?: number;
  /** Part size (default 16 MiB; S3's minimum is 5 MiB). */
  readonly partSize?: number;
  /** A client to use instead of one built from the options (tests, custom middleware). */
  readonly client?: S3Client;
}

const MiB = 1024 * 1024;

export class S3Backend implements Backend {
  readonly location: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #threshold: number;
  readonly #partSize: number;

  constructor(options: S3BackendOptions) {
    this.#bucket = options.bucket;
    this.#prefix = options.prefix ?? '';
    if (this.#prefix !== '') checkPrefix(this.#prefix.toLowerCase());
    this.location = `s3://${options.bucket}/${this.#prefix}`;
    this.#threshold = options.multipartThreshold ?? 64 * MiB;
    this.#partSize = Math.max(5 * MiB, options.partSize ?? 16 * MiB);
    // The SDK warns once per process about Node 20's end of support; the CLI's stderr is
    // for coded errors, so silence that notice unless the user opted in.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.#client =
      options.client ??
      new S3Client({
        region: options.region ?? 'us-east-1',
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        forcePathStyle: options.forcePathStyle ?? Boolean(options.endpoint),
        ...(options.credentials ? { credentials: options.credentials } : {}),
      });
  }

  async put(key: string, data: Buffer | readonly Buffer[]): Promise<void> {
    checkKey(key);
    const size = byteLength(data);
    const parts = Buffer.isBuffer(data) ? [data] : data;
    if (size < this.#threshold) {
      const body = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      await this.#send(key, () =>
        this.#client.send(
          new PutObjectCommand({
            Bucket: this.#bucket,
            Key: this.#prefix + key,
            Body: body,
            ContentLength: size,
          }),
        ),
      );
      return;
    }
    await this.#multipart(key, Buffer.concat(parts));
  }

  async #multipart(key: string, body: Buffer): Promise<void> {
    const Key = this.#prefix + key;
    const created = await this.#send(key, () =>
      this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key })),
    );
    const UploadId = created.UploadId;
    try {
      const done: { ETag: string; PartNumber: number }[] = [];
      for (let at = 0, n = 1; at < body.length; at += this.#partSize, n++) {
        const part = body.subarray(at, Math.min(body.length, at + this.#partSize));
        const r = await this.#send(key, () =>
          this.#client.send(
            new UploadPartCommand({
              Bucket: this.#bucket,
              Key,
              UploadId,
              PartNumber: n,
              Body: part,
              ContentLength: part.length,
            }),
          ),
        );
        done.push({ ETag: r.ETag ?? '', PartNumber: n });
      }
      await this.#send(key, () =>
        this.#client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.#bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: done },
          }),
        ),
      );
    } catch (err) {
      await this.#client
        .send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key, UploadId }))
        .catch(() => {});
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    checkKey(key);
    if (range && range.length === 0) {
      // S3 has no empty range: check the offset against the size instead.
      const size = await this.#size(key);
      if (size === undefined) missingObject(this.location, key);
      checkRange(this.location, key, size, range);
      return Buffer.alloc(0);
    }
    const r = await this.#send(key, () =>
      this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#prefix + key,
          ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
        }),
      ),
    );
    const body = Buffer.from((await r.Body?.transformToByteArray()) ?? new Uint8Array());
    if (range && body.length !== range.length) {
      // S3 returns what exists of a range that runs past the end: a short read is truncation.
      throw new StoreTruncatedError(
        `${this.location}: ${key} ended early: ${body.length} of ${range.length} bytes at ${range.offset}`,
        { key, offset: range.offset, length: range.length },
      );
    }
    return body;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    let token: string | undefined;
    do {
      const r = await this.#send(prefix, () =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#prefix + prefix,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const o of r.Contents ?? []) {
        if (o.Key) yield { key: o.Key.slice(this.#prefix.length), size: o.Size ?? 0 };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.#send(key, () =>
      this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key })),
    );
  }

  async exists(key: string): Promise<boolean> {
    checkKey(key);
    return (await this.#size(key)) !== undefined;
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  async #size(key: string): Promise<number | undefined> {
    try {
      const r = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }),
      );
      return r.ContentLength ?? 0;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#error(key, err);
    }
  }

  /** Runs one request, turning S3 errors into coded ones. */
  async #send<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.#error(key, err);
    }
  }

  #error(key: string, err: unknown): Error {
    if (FerryError.is(err)) return err;
    const name = (err as { name?: string }).name ?? '';
    const status = statusOf(err);
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      try {
        missingObject(this.location, key);
      } catch (e) {
        return e as Error;
      }
    }
    if (name === 'InvalidRange' || status === 416) {
      return new StoreTruncatedError(`${this.location}: range of ${key} is past its end`, { key });
    }
    return new IoError(
      `${this.location}: ${key}: ${name || 'S3 error'}: ${(err as Error).message}`,
      {
        key,
        status: status ?? null,
        s3Error: name,
      },
      { cause: err },
    );
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}
