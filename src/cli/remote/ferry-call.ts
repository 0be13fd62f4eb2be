/**
 * Calls one of Ferry's extension operations (src/api/model/ferry/): the same wire as SMS
 * (AWS JSON 1.1, SigV4 signing name `sms`), only the target prefix differs, so the SMS SDK
 * client cannot send them. Signed with the SDK's own signer; failures become the same coded
 * errors as SDK failures (errors.ts) by presenting them in the SDK's error shape.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { fromSdkError } from './errors.js';
import type { Connection } from './connection.js';

/** Same prefix as src/api/model/ferry/index.ts (the CLI does not import the API edge). */
export const FERRY_TARGET = 'Ferry_20261124';
/** Extension responses are pages of at most 1000 items; anything far larger is not Ferry. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export async function callFerry<T>(
  c: Connection,
  operation: string,
  input: object,
  signal: AbortSignal,
): Promise<T> {
  const url = new URL(c.endpoint);
  const body = JSON.stringify(input);
  const signer = new SignatureV4({
    credentials: c.credentials,
    region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    service: 'sms',
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: '/',
      headers: {
        host: url.host,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `${FERRY_TARGET}.${operation}`,
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    }),
  );
  const res = await send(url, signed.headers as Record<string, string>, body, c.ca, signal).catch((err) => {
    throw fromSdkError(err, c.endpoint);
  });
  const text = res.body.toString('utf8');
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = undefined;
  }
  if (res.status === 200 && typeof parsed === 'object' && parsed !== null) return parsed as T;
  const wire = (parsed ?? {}) as { __type?: unknown; message?: unknown };
  throw fromSdkError(
    {
      name: typeof wire.__type === 'string' ? wire.__type.replace(/^.*#/, '') : `HTTP ${res.status}`,
      message: typeof wire.message === 'string' ? wire.message : text.slice(0, 200),
      $fault: res.status < 500 ? 'client' : 'server',
      $metadata: { httpStatusCode: res.status },
    },
    c.endpoint,
  );
}

function send(
  url: URL,
  headers: Record<string, string>,
  body: string,
  ca: string | undefined,
  signal: AbortSignal,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const options = { method: 'POST', headers, signal };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          res.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...options, ...(ca ? { ca } : {}) }, onResponse)
        : httpRequest(url, options, onResponse);
    req.on('error', reject);
    req.end(body);
  });
}
