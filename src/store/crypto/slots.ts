/**
 * Key slots (`keys/<slot-id>`): the repository key material wrapped by one master key.
 * Plaintext JSON (it must be readable before anything can be decrypted); the wrapped
 * material is authenticated with aad = repository id ‖ slot id, so a slot copied from
 * another repository or renamed does not open.
 */
import { randomBytes } from 'node:crypto';
import { StoreCorruptError, StoreUnsupportedError, StoreWrongKeyError } from '../../errors/index.js';
import { KEY_MATERIAL_BYTES } from './keys.js';
import type { MasterKey, ScryptParams, SlotSecret } from './master.js';

export interface KeySlot extends SlotSecret {
  readonly version: 1;
  readonly id: string;
  readonly kind: string;
  readonly created: string;
  readonly label?: string;
}

const SLOT_ID_RE = /^[0-9a-f]{16}$/;
const MAX_SLOT_BYTES = 64 * 1024;

export function slotAad(repoId: string, slotId: string): Buffer {
  return Buffer.from(`ferry-store/v1/key-slot\0${repoId}\0${slotId}`);
}

export async function makeSlot(
  master: MasterKey,
  material: Buffer,
  repoId: string,
  label?: string,
): Promise<KeySlot> {
  const id = randomBytes(8).toString('hex');
  const secret = await master.wrap(material, slotAad(repoId, id));
  return {
    version: 1,
    id,
    kind: master.kind,
    created: new Date().toISOString(),
    ...(label ? { label } : {}),
    ...secret,
  };
}

export function encodeSlot(slot: KeySlot): Buffer {
  return Buffer.from(JSON.stringify(slot, null, 2) + '\n');
}

/** Parses and validates a slot read under `keys/<expectedId>`. */
export function decodeSlot(buf: Buffer, expectedId: string): KeySlot {
  const bad = (field: string): never => {
    throw new StoreCorruptError(`key slot ${expectedId}: invalid ${field}`, { slot: expectedId, field });
  };
  if (buf.length > MAX_SLOT_BYTES) bad('size');
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
  } catch {
    return bad('JSON');
  }
  if (typeof v !== 'object' || v === null) bad('JSON');
  if (v.version !== 1) {
    throw new StoreUnsupportedError(`key slot ${expectedId}: version ${String(v.version)} is not supported`, {
      slot: expectedId,
    });
  }
  if (v.id !== expectedId || !SLOT_ID_RE.test(expectedId)) bad('id');
  if (typeof v.kind !== 'string' || v.kind.length === 0 || v.kind.length > 64) bad('kind');
  if (typeof v.created !== 'string') bad('created');
  if (typeof v.wrapped !== 'string' || v.wrapped.length > 16 * 1024) bad('wrapped');
  if (v.label !== undefined && typeof v.label !== 'string') bad('label');
  if (v.kdf !== undefined && (typeof v.kdf !== 'object' || v.kdf === null)) bad('kdf');
  return Object.freeze({
    version: 1,
    id: expectedId,
    kind: v.kind as string,
    created: v.created as string,
    wrapped: v.wrapped as string,
    ...(v.label !== undefined ? { label: v.label as string } : {}),
    ...(v.kdf !== undefined ? { kdf: v.kdf as ScryptParams } : {}),
    ...(v.provider !== undefined ? { provider: v.provider as Record<string, string> } : {}),
  });
}

/** Finds the slot `master` opens; FERRY_STORE_WRONG_KEY when none does. */
export async function unlockSlots(
  slots: readonly KeySlot[],
  master: MasterKey,
  repoId: string,
  location: string,
): Promise<{ material: Buffer; slot: KeySlot }> {
  const candidates = slots.filter((s) => s.kind === master.kind);
  for (const slot of candidates) {
    const material = await master.unwrap(slot, slotAad(repoId, slot.id));
    if (material) {
      if (material.length !== KEY_MATERIAL_BYTES) {
        throw new StoreCorruptError(`key slot ${slot.id}: key material has the wrong length`, {
          slot: slot.id,
        });
      }
      return { material, slot };
    }
  }
  throw new StoreWrongKeyError(
    `${location}: the ${master.kind === 'key' ? 'master key' : master.kind} given opens none of the ` +
      `${slots.length} key slot(s) (${candidates.length} of kind ${master.kind})`,
    { slots: slots.length, kind: master.kind },
  );
}
