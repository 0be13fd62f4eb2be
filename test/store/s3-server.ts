/**
 * An S3-compatible server on loopback for the back-end test matrix (s3rver: no S3 server
 * is packaged for these machines). One server per test file; a fresh bucket per back end.
 */
import { after } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { createS3Backend, type Backend } from '../../src/store/index.js';
import { tempDir } from '../helpers/qemu.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
let server: Promise<{ endpoint: string; close: () => Promise<void> }> | undefined;
let buckets = 0;

function start() {
  server ??= (async () => {
    const s = new S3rver({
      port: 0,
      address: '127.0.0.1',
      silent: true,
      directory: await tempDir('ferry-s3rver-'),
    });
    const { port } = await s.run();
    return { endpoint: `http://127.0.0.1:${port}`, close: () => s.close() };
  })();
  return server;
}

after(async () => {
  if (server) await (await server).close();
});

/** A new empty bucket, as a store back end (small multipart threshold to exercise parts). */
export async function s3Backend(prefix = 'repo/'): Promise<Backend> {
  const { endpoint } = await start();
  const bucket = `ferry-test-${process.pid}-${++buckets}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: CREDENTIALS,
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return createS3Backend({
    bucket,
    prefix,
    endpoint,
    credentials: CREDENTIALS,
    multipartThreshold: 6 * 1024 * 1024,
    partSize: 5 * 1024 * 1024,
  });
}

export async function s3Endpoint(): Promise<string> {
  return (await start()).endpoint;
}
