/**
 * AWS Signature Version 4 verification, server side. The canonical request is rebuilt from
 * the request exactly as received (raw header values, Host with its port, raw body bytes)
 * and signed with the caller's secret; the result is compared in constant time.
 *
 * Reference: "Create a signed AWS API request" (AWS IAM user guide, SigV4), and the
 * implementer's digest ../shared/docs/sms-api.md §3, which recomputed every signature the
 * JS SDK 3.523.0 and awscli 2.9.19 send.
 *
 * What is refused, and as what (codes map to SMS/AWS error names in errors.ts):
 *   no Authorization                         FERRY_AUTH_MISSING
 *   malformed header, wrong algorithm/service/terminator, host or date not signed,
 *   unsigned security token, bad date        FERRY_AUTH_INCOMPLETE
 *   unknown, revoked or expired key; wrong session token   FERRY_AUTH_UNKNOWN_KEY
 *   request time outside the skew window     FERRY_AUTH_EXPIRED
 *   signature or body hash mismatch          FERRY_AUTH_SIGNATURE_MISMATCH
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  AuthExpiredError,
  AuthIncompleteError,
  AuthMissingError,
  AuthSignatureMismatchError,
  AuthUnknownKeyError,
} from '../errors/index.js';

export const SIGNING_SERVICE = 'sms';
/**
 * Requests more than 5 minutes from the server clock are refused. AWS documents 15
 * minutes; 5 matches the JS SDK, which re-syncs its clock from our Date header (and
 * retries) as soon as it is 5 minutes off, and narrows the window for replays.
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

export interface SignedRequest {
  readonly method: string;
  /** Path and query exactly as on the request line. */
  readonly url: string;
  /** Node's rawHeaders: [name, value, name, value, …] as received. */
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
}

export interface KeyForSigning {
  readonly secretAccessKey: string;
  readonly sessionTokenHash?: string;
}

export type KeyLookup = (accessKeyId: string) => Promise<KeyForSigning | undefined>;

export interface VerifiedCaller {
  readonly accessKeyId: string;
  readonly region: string;
  readonly signature: string;
  readonly requestTime: number;
}

const AUTH_RE =
  /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;
const AMZ_DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

export async function verifySigV4(
  req: SignedRequest,
  lookup: KeyLookup,
  now: number,
  sha256OfToken: (token: string) => string,
): Promise<VerifiedCaller> {
  const headers = collectHeaders(req.rawHeaders);
  const authorization = headers.get('authorization');
  if (!authorization || authorization.length === 0)
    throw new AuthMissingError('Missing Authentication Token');
  if (authorization.length > 1) throw new AuthIncompleteError('More than one Authorization header');
  const auth = authorization[0] as string;
  if (!auth.startsWith('AWS4-HMAC-SHA256')) {
    throw new AuthIncompleteError('Only AWS4-HMAC-SHA256 (Signature Version 4) is accepted');
  }
  const m = AUTH_RE.exec(auth.trim());
  if (!m) {
    throw new AuthIncompleteError(
      "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters",
    );
  }
  const [, credential = '', signedHeadersText = '', signature = ''] = m;
  const scope = credential.split('/');
  if (scope.length !== 5)
    throw new AuthIncompleteError('Credential must be KEY/DATE/REGION/SERVICE/aws4_request');
  const [accessKeyId = '', scopeDate = '', region = '', service = '', terminator = ''] = scope;
  if (!/^[A-Z0-9]{16,128}$/.test(accessKeyId))
    throw new AuthIncompleteError('Credential has a malformed access key id');
  if (!/^\d{8}$/.test(scopeDate)) throw new AuthIncompleteError('Credential has a malformed date');
  if (!/^[a-z0-9-]{1,64}$/.test(region)) throw new AuthIncompleteError('Credential has a malformed region');
  if (service !== SIGNING_SERVICE) {
    throw new AuthIncompleteError(
      `Credential should be scoped to the service '${SIGNING_SERVICE}', not '${service}'`,
    );
  }
  if (terminator !== 'aws4_request')
    throw new AuthIncompleteError("Credential should end with 'aws4_request'");

  const signedHeaders = signedHeadersText.split(';');
  if (signedHeaders.some((h) => !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(h))) {
    throw new AuthIncompleteError('SignedHeaders must be lowercase header names separated by ;');
  }
  if (
    [...signedHeaders].sort().join(';') !== signedHeadersText ||
    new Set(signedHeaders).size !== signedHeaders.length
  ) {
    throw new AuthIncompleteError('SignedHeaders must be sorted and unique');
  }
  if (!signedHeaders.includes('host')) throw new AuthIncompleteError("'Host' must be a signed header");

  // Request time: X-Amz-Date, or the Date header when X-Amz-Date is absent (as AWS does).
  const amzDate = single(headers, 'x-amz-date');
  let timestamp: string;
  if (amzDate !== undefined) {
    if (!signedHeaders.includes('x-amz-date'))
      throw new AuthIncompleteError("'X-Amz-Date' must be a signed header");
    timestamp = amzDate;
  } else {
    const date = single(headers, 'date');
    if (date === undefined)
      throw new AuthIncompleteError("Authorization requires an 'X-Amz-Date' or 'Date' header");
    if (!signedHeaders.includes('date')) throw new AuthIncompleteError("'Date' must be a signed header");
    const t = Date.parse(date);
    if (!Number.isFinite(t)) throw new AuthIncompleteError('Date header is not a valid HTTP date');
    timestamp = new Date(t)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
  }
  const dm = AMZ_DATE_RE.exec(timestamp);
  if (!dm) throw new AuthIncompleteError('X-Amz-Date must be in the format YYYYMMDDTHHMMSSZ');
  const requestTime = Date.UTC(+dm[1]!, +dm[2]! - 1, +dm[3]!, +dm[4]!, +dm[5]!, +dm[6]!);
  if (!Number.isFinite(requestTime)) throw new AuthIncompleteError('X-Amz-Date is not a valid time');
  if (timestamp.slice(0, 8) !== scopeDate) {
    throw new AuthIncompleteError('Credential date does not match the request date');
  }

  const token = single(headers, 'x-amz-security-token');
  if (token !== undefined && !signedHeaders.includes('x-amz-security-token')) {
    throw new AuthIncompleteError("'X-Amz-Security-Token' must be a signed header");
  }

  // Only now the key: an unsigned-looking request learns nothing about which keys exist.
  const key = await lookup(accessKeyId);
  if (!key) throw new AuthUnknownKeyError('The security token included in the request is invalid.');
  if (key.sessionTokenHash !== undefined || token !== undefined) {
    if (
      key.sessionTokenHash === undefined ||
      token === undefined ||
      !equalHex(sha256OfToken(token), key.sessionTokenHash)
    ) {
      throw new AuthUnknownKeyError('The security token included in the request is invalid.');
    }
  }

  if (Math.abs(now - requestTime) > CLOCK_SKEW_MS) {
    throw new AuthExpiredError(
      `Signature expired: ${timestamp} is outside the allowed window of ${CLOCK_SKEW_MS / 60_000} minutes ` +
        `around the server time ${new Date(now).toISOString()}`,
    );
  }

  const bodyHash = createHash('sha256').update(req.body).digest('hex');
  const declared = single(headers, 'x-amz-content-sha256');
  if (declared !== undefined && declared !== 'UNSIGNED-PAYLOAD' && declared !== bodyHash) {
    throw new AuthSignatureMismatchError(
      'The provided x-amz-content-sha256 header does not match what was computed.',
    );
  }

  const canonicalHeaders: string[] = [];
  for (const name of signedHeaders) {
    const values = headers.get(name);
    if (!values) throw new AuthSignatureMismatchError(signatureMismatchMessage);
    canonicalHeaders.push(`${name}:${values.map(normalizeValue).join(',')}\n`);
  }
  const { path, query } = splitUrl(req.url);
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(path),
    canonicalQuery(query),
    canonicalHeaders.join(''),
    signedHeadersText,
    declared === 'UNSIGNED-PAYLOAD' ? 'UNSIGNED-PAYLOAD' : bodyHash,
  ].join('\n');
  const credentialScope = `${scopeDate}/${region}/${service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    timestamp,
    credentialScope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const kDate = hmac(`AWS4${key.secretAccessKey}`, scopeDate);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const kSigning = hmac(kService, 'aws4_request');
  const expected = createHmac('sha256', kSigning).update(stringToSign).digest('hex');
  if (!equalHex(expected, signature)) throw new AuthSignatureMismatchError(signatureMismatchMessage);
  return { accessKeyId, region, signature, requestTime };
}

const signatureMismatchMessage =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method.';

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Lowercased name → every value received under it, in order. */
function collectHeaders(raw: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const list = out.get(name);
    if (list) list.push(raw[i + 1] as string);
    else out.set(name, [raw[i + 1] as string]);
  }
  return out;
}

function single(headers: Map<string, string[]>, name: string): string | undefined {
  const v = headers.get(name);
  if (!v) return undefined;
  if (v.length > 1) throw new AuthIncompleteError(`More than one '${name}' header`);
  return (v[0] as string).trim();
}

/** Trim, and collapse runs of spaces outside quotes to one (SigV4's header rule). */
function normalizeValue(v: string): string {
  return v.trim().replace(/\s+/g, ' ');
}

function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url || '/', query: '' } : { path: url.slice(0, q) || '/', query: url.slice(q + 1) };
}

/** RFC 3986 unreserved characters stay; everything else is %XX (uppercase). */
export function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Non-S3 rule: each segment of the path as sent is URI-encoded once more. */
function canonicalUri(path: string): string {
  return path
    .split('/')
    .map((seg) => rfc3986(seg))
    .join('/');
}

function canonicalQuery(query: string): string {
  if (!query) return '';
  const pairs = query
    .split('&')
    .filter((p) => p.length > 0)
    .map((p) => {
      const eq = p.indexOf('=');
      const k = eq < 0 ? p : p.slice(0, eq);
      const v = eq < 0 ? '' : p.slice(eq + 1);
      return [rfc3986(safeDecode(k)), rfc3986(safeDecode(v))] as const;
    });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
