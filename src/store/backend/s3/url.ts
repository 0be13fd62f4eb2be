/**
 * `s3://bucket/prefix` locations, and the S3 back end loaded on demand: the AWS SDK is
 * large, and only repositories in a bucket need it (every other command stays fast).
 */
import type { Backend } from '../backend.js';
import type { S3BackendOptions } from './s3.js';

/** Parses `s3://bucket/prefix` (prefix normalised to "" or ending in "/"). */
export function parseS3Url(url: string): { bucket: string; prefix: string } | undefined {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) return undefined;
  const raw = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket: m[1] as string, prefix: raw ? `${raw}/` : '' };
}

export async function createS3Backend(options: S3BackendOptions): Promise<Backend> {
  const { S3Backend } = await import('./s3.js');
  return new S3Backend(options);
}
