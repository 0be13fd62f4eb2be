/**
 * How `ferry servers|jobs|runs` reach a running `ferry server`: its SMS API, signed with
 * SigV4 by @aws-sdk/client-sms, exactly as `aws sms` would (docs/control-plane.md,
 * "Clients").
 *
 *   endpoint     --endpoint URL, else FERRY_ENDPOINT, else AWS_ENDPOINT_URL_SMS / AWS_ENDPOINT_URL
 *   credentials  --access-key-file F (JSON as `ferry keys create --json` prints it, or
 *                DATA_DIR/admin-credentials.json), else FERRY_ACCESS_KEY_FILE, else
 *                AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)
 *   trust        --ca-bundle PEM (the server's DATA_DIR/tls/ca.pem), else FERRY_CA_BUNDLE,
 *                else AWS_CA_BUNDLE, else the system's CAs (and NODE_EXTRA_CA_CERTS)
 *
 * Credentials never come from the SDK's default chain: it would read profiles and ask the
 * EC2 metadata service, which on most hosts means a slow timeout off this machine.
 */
import { open } from 'node:fs/promises';
import { Agent } from 'node:https';
import type { SMS } from '@aws-sdk/client-sms';
import { InvalidArgumentError, toFerryError } from '../../errors/index.js';
import type { Options } from '../args.js';

export const CLIENT_OPTIONS = {
  endpoint: { type: 'string' },
  'access-key-file': { type: 'string' },
  'ca-bundle': { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies Options;

export const CLIENT_USAGE = '[--endpoint URL] [--access-key-file F] [--ca-bundle PEM] [--json]';

export interface ClientFlags {
  endpoint?: string | undefined;
  'access-key-file'?: string | undefined;
  'ca-bundle'?: string | undefined;
}

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface Connection {
  readonly endpoint: string;
  readonly credentials: Credentials;
  /** PEM text of the CA bundle, when one was given. */
  readonly ca?: string;
}

/** Key files and CA bundles are a few KiB; anything far larger is the wrong file. */
const MAX_KEY_FILE_BYTES = 64 * 1024;
const MAX_CA_BUNDLE_BYTES = 4 * 1024 * 1024;
export async function resolveConnection(
  flags: ClientFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  // An empty variable is an unset one (`FERRY_ENDPOINT= ferry …`), as for the AWS CLI.
  const endpoint = parseEndpoint(
    flags.endpoint ?? (env.FERRY_ENDPOINT || env.AWS_ENDPOINT_URL_SMS || env.AWS_ENDPOINT_URL),
  );
  const credentials = await resolveCredentials(
    flags['access-key-file'] ?? (env.FERRY_ACCESS_KEY_FILE || undefined),
    env,
  );
  const caPath = flags['ca-bundle'] ?? (env.FERRY_CA_BUNDLE || env.AWS_CA_BUNDLE || undefined);
  const ca = caPath ? await readCaBundle(caPath) : undefined;
  return { endpoint, credentials, ...(ca ? { ca } : {}) };
}

export function parseEndpoint(text: string | undefined): string {
  if (text === undefined || text === '') {
    throw new InvalidArgumentError(
      'no server: pass --endpoint URL (as `ferry server` printed it, e.g. https://127.0.0.1:8443) or set FERRY_ENDPOINT',
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(`--endpoint ${JSON.stringify(text)} is not a URL (https://HOST:PORT)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InvalidArgumentError(`--endpoint must be http:// or https://, not ${url.protocol}`);
  }
  if (
    url.username ||
    url.password ||
    url.search ||
    url.hash ||
    (url.pathname !== '/' && url.pathname !== '')
  ) {
    throw new InvalidArgumentError(`--endpoint is a scheme, host and port only, not ${JSON.stringify(text)}`);
  }
  return `${url.protocol}//${url.host}`;
}

async function resolveCredentials(file: string | undefined, env: NodeJS.ProcessEnv): Promise<Credentials> {
  if (file !== undefined)
    return parseKeyFile(await readBounded(file, MAX_KEY_FILE_BYTES, 'access key file'), file);
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (accessKeyId && secretAccessKey) {
    const sessionToken = env.AWS_SESSION_TOKEN;
    return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  }
  throw new InvalidArgumentError(
    'no credentials: pass --access-key-file F (the JSON `ferry keys create --json` prints, or ' +
      'DATA_DIR/admin-credentials.json) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
  );
}

/** `{"accessKeyId": "…", "secretAccessKey": "…", "sessionToken"?: "…"}`; nothing else is read. */
export function parseKeyFile(text: string, path: string): Credentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(
      `${path} is not JSON (expected the output of \`ferry keys create --json\`)`,
      {
        path,
      },
    );
  }
  const o = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const { accessKeyId, secretAccessKey, sessionToken } = o;
  // Printable ASCII only: these go into an HTTP header.
  const ok = (v: unknown): v is string => typeof v === 'string' && /^[\x21-\x7e]{1,8192}$/.test(v);
  if (!ok(accessKeyId) || !ok(secretAccessKey) || (sessionToken !== undefined && !ok(sessionToken))) {
    throw new InvalidArgumentError(
      `${path} has no valid accessKeyId and secretAccessKey (expected the output of \`ferry keys create --json\`)`,
      { path },
    );
  }
  return { accessKeyId, secretAccessKey, ...(sessionToken !== undefined ? { sessionToken } : {}) };
}

async function readCaBundle(path: string): Promise<string> {
  const pem = await readBounded(path, MAX_CA_BUNDLE_BYTES, 'CA bundle');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new InvalidArgumentError(`${path} holds no PEM certificate (the server's is DATA_DIR/tls/ca.pem)`, {
      path,
    });
  }
  return pem;
}

/** Reads at most `limit` bytes; a larger file is refused before it is read whole. */
async function readBounded(path: string, limit: number, what: string): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw toFerryError(err);
  }
  try {
    const buf = Buffer.alloc(limit + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > limit) throw new InvalidArgumentError(`${path}: a ${what} is at most ${limit} bytes`, { path });
    return buf.subarray(0, n).toString('utf8');
  } catch (err) {
    throw toFerryError(err);
  } finally {
    await fh.close();
  }
}

/** An SMS client for the connection; the SDK is loaded only by the commands that talk to a server. */
export async function smsClient(c: Connection): Promise<SMS> {
  const { SMS } = await import('@aws-sdk/client-sms');
  return new SMS({
    endpoint: c.endpoint,
    // Ferry accepts any region in the signature scope; the SDK needs one.
    region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    credentials: c.credentials,
    maxAttempts: 3,
    // No handler timeouts: @smithy/node-http-handler 2.x leaves their timers (and a socket
    // check of requestTimeout + connectionTimeout ms) running after a failed request, which
    // kept the process alive for minutes after ECONNREFUSED. session.ts bounds every call
    // with an abort signal instead; 0 also makes that leftover check fire at once.
    requestHandler: {
      connectionTimeout: 0,
      requestTimeout: 0,
      ...(c.ca ? { httpsAgent: new Agent({ ca: c.ca, keepAlive: true }) } : {}),
    },
  });
}
