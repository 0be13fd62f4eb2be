/**
 * Signs SMS requests the way the JS SDK does (its own SigV4 signer), for tests that talk
 * to the API without a client: in-process through fastify.inject, or over a socket.
 */
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export const TARGET_PREFIX = 'AWSServerMigrationService_V2016_10_24';

export interface TestCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface SignOptions {
  readonly credentials: TestCredentials;
  readonly operation: string;
  readonly body?: string;
  readonly host?: string;
  readonly path?: string;
  readonly region?: string;
  readonly service?: string;
  readonly date?: Date;
  readonly extraHeaders?: Record<string, string>;
}

export async function signedHeaders(o: SignOptions): Promise<Record<string, string>> {
  const body = o.body ?? '{}';
  const host = o.host ?? 'localhost:80';
  const signer = new SignatureV4({
    credentials: o.credentials,
    region: o.region ?? 'us-east-1',
    service: o.service ?? 'sms',
    sha256: Hash.bind(null, 'sha256'),
  });
  const req = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: host.split(':')[0] ?? host,
    path: o.path ?? '/',
    headers: {
      host,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `${TARGET_PREFIX}.${o.operation}`,
      'content-length': String(Buffer.byteLength(body)),
      ...o.extraHeaders,
    },
    body,
  });
  const signed = await signer.sign(req, { signingDate: o.date ?? new Date() });
  return signed.headers as Record<string, string>;
}
