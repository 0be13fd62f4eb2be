/**
 * Secrets at rest (access key secrets, webhook signing secrets): AES-256-GCM under the data
 * directory's master key, with a label naming the secret's row as associated data, so a
 * ciphertext copied to another row does not decrypt. Envelope: `v1.` + base64(iv ‖ tag ‖ ct).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { InternalError } from '../errors/index.js';

const ENVELOPE_VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function sealSecret(masterKey: Buffer, label: string, secret: string): string {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', masterKey, iv);
  c.setAAD(Buffer.from(label));
  const ct = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
  return `${ENVELOPE_VERSION}.${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64')}`;
}

/** The secret of an envelope; `what` names it in errors ("access key AKIA…"). */
export function openSecret(masterKey: Buffer, label: string, envelope: string, what: string): string {
  const [version, payload] = envelope.split('.', 2);
  const raw = Buffer.from(payload ?? '', 'base64');
  if (version !== ENVELOPE_VERSION || raw.length <= IV_BYTES + TAG_BYTES) {
    throw new InternalError(`${what}: unreadable secret envelope`);
  }
  try {
    const d = createDecipheriv('aes-256-gcm', masterKey, raw.subarray(0, IV_BYTES));
    d.setAAD(Buffer.from(label));
    d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
  } catch (err) {
    // Wrong master key (data directory and database from different installations).
    throw new InternalError(`${what}: secret does not decrypt with this master key`, {}, { cause: err });
  }
}
