/**
 * Webhook signatures, in the scheme Stripe and others made familiar: the header
 * `Ferry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. Signing
 * the timestamp with the body lets a receiver refuse replays older than its tolerance.
 * docs/events.md shows how to verify in a few lines of any language; `verifySignature` is
 * the reference.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'ferry-signature';
/** How old a signature a receiver should accept by default (clock skew plus retries in flight). */
export const DEFAULT_TOLERANCE_S = 300;

export function signatureHeader(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** Whether `header` signs `body` with `secret`, at most `toleranceS` from `nowS`. */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string,
  nowS: number = Math.floor(Date.now() / 1000),
  toleranceS = DEFAULT_TOLERANCE_S,
): boolean {
  if (!header || header.length > 1024) return false;
  const parts = new Map(
    header.split(',').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS || !/^[0-9a-f]{64}$/.test(v1)) return false;
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(want, Buffer.from(v1, 'hex'));
}
