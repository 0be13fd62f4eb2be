/**
 * Identifiers Ferry issues. The SMS model constrains only app ids (`^app-[0-9a-f]{17}$`)
 * and validation ids (`^val-[0-9a-f]{17}$`); the other prefixes are ours, chosen to look
 * like the ones AWS used so scripts that eyeball ids keep working.
 */
import { createHash, randomBytes } from 'node:crypto';

const hex17 = () => randomBytes(9).toString('hex').slice(0, 17);

export const newId = {
  app: () => `app-${hex17()}`,
  validation: () => `val-${hex17()}`,
  serverGroup: () => `sg-${hex17()}`,
  job: () => `sms-job-${hex17()}`,
  run: () => `sms-run-${hex17()}`,
  template: () => `tpl-${hex17()}`,
  connector: () => `c-${hex17()}`,
  host: () => `h-${hex17()}`,
  instance: () => `i-${hex17()}`,
} as const;

/**
 * A catalog server's id is derived from where it lives (VM manager + VM id), so deleting
 * and re-importing the catalog gives every VM back the id its jobs and apps refer to.
 */
export function serverIdFor(vmManagerId: string, vmId: string): string {
  return `s-${createHash('sha256').update(`${vmManagerId}\0${vmId}`).digest('hex').slice(0, 17)}`;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function pick(alphabet: string, n: number): string {
  // 256 is a multiple of both alphabet sizes (32, 64): no modulo bias.
  return [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** AWS-style access key ids: AKIA… for long-term keys, ASIA… for temporary ones. */
export const newAccessKeyId = (temporary: boolean) => `${temporary ? 'ASIA' : 'AKIA'}${pick(BASE32, 16)}`;
/** 40 characters, like AWS secret access keys (240 bits of entropy). */
export const newSecretAccessKey = () => pick(SECRET_ALPHABET, 40);
export const newSessionToken = () => `FwoFerry${randomBytes(96).toString('base64')}`;
