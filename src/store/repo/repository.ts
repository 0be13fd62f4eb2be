/**
 * A repository opened with a master key: the back end, the authenticated config, the
 * derived keys, and helpers to read and write encrypted objects. Everything else in the
 * store (writing, reading, GC, check) takes a Repository.
 */
import {
  StoreCorruptError,
  StoreExistsError,
  StoreMissingChunkError,
  StoreNotFoundError,
} from '../../errors/index.js';
import { listAll, type Backend } from '../backend/backend.js';
import { deriveKeys, newKeyMaterial, type RepoKeys } from '../crypto/keys.js';
import type { MasterKey } from '../crypto/master.js';
import { decodeSlot, encodeSlot, makeSlot, unlockSlots, type KeySlot } from '../crypto/slots.js';
import { ChunkIndex } from '../index/chunk-index.js';
import { decodeIndex, type IndexedPack } from '../index/format.js';
import {
  baseName,
  CONFIG_KEY,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_FANOUT,
  HEX64_RE,
  KEY_PREFIX,
  LOCK_STALE_MS,
} from '../layout.js';
import { decodeConfig, encodeConfig, newConfig, verifyConfig, type RepoConfig } from './config.js';
import { decodeObject, encodeObject, parseJson, type ObjectKind } from './objects.js';

export interface InitOptions {
  readonly blockSize?: number;
  readonly fanout?: number;
  /** Label of the first key slot. */
  readonly label?: string;
}

export interface OpenOptions {
  /** A lock not refreshed for this long is stale (default 10 minutes). */
  readonly lockStaleMs?: number;
}

export interface LoadedIndex {
  readonly index: ChunkIndex;
  /** Index file ids that were loaded, with their packs (GC needs both). */
  readonly files: ReadonlyMap<string, readonly IndexedPack[]>;
}

export class Repository {
  readonly backend: Backend;
  readonly config: RepoConfig;
  readonly keys: RepoKeys;
  /** The slot the master key opened. */
  readonly slot: KeySlot;
  readonly lockStaleMs: number;
  readonly #material: Buffer;

  private constructor(
    backend: Backend,
    config: RepoConfig,
    material: Buffer,
    slot: KeySlot,
    options: OpenOptions,
  ) {
    this.backend = backend;
    this.config = config;
    this.#material = material;
    this.keys = deriveKeys(material);
    this.slot = slot;
    this.lockStaleMs = options.lockStaleMs ?? LOCK_STALE_MS;
  }

  get location(): string {
    return this.backend.location;
  }

  static async init(backend: Backend, master: MasterKey, options: InitOptions = {}): Promise<Repository> {
    if ((await backend.exists(CONFIG_KEY)) || (await listAll(backend, '')).length > 0) {
      throw new StoreExistsError(
        `${backend.location} is not empty; a repository is created in an empty place`,
        {
          location: backend.location,
        },
      );
    }
    const config = newConfig(options.blockSize ?? DEFAULT_BLOCK_SIZE, options.fanout ?? DEFAULT_FANOUT);
    const material = newKeyMaterial();
    const keys = deriveKeys(material);
    // Validate what we are about to write with the same code that reads it.
    const encoded = encodeConfig(config, keys.macKey);
    verifyConfig(decodeConfig(encoded, backend.location), keys.macKey, backend.location);
    const slot = await makeSlot(master, material, config.id, options.label ?? 'initial');
    // Key slot first: a config without a slot would be a repository nobody can open.
    await backend.put(`${KEY_PREFIX.keys}${slot.id}`, encodeSlot(slot));
    await backend.put(CONFIG_KEY, encoded);
    return new Repository(backend, config, material, slot, {});
  }

  static async open(backend: Backend, master: MasterKey, options: OpenOptions = {}): Promise<Repository> {
    let raw: Buffer;
    try {
      raw = await backend.get(CONFIG_KEY);
    } catch (err) {
      if (err instanceof StoreMissingChunkError) {
        throw new StoreNotFoundError(`no image-store repository at ${backend.location}`, {
          location: backend.location,
        });
      }
      throw err;
    }
    const unverified = decodeConfig(raw, backend.location);
    const slots = await readSlots(backend);
    const { material, slot } = await unlockSlots(slots, master, unverified.id, backend.location);
    const config = verifyConfig(unverified, deriveKeys(material).macKey, backend.location);
    return new Repository(backend, config, material, slot, options);
  }

  // ── key slots ────────────────────────────────────────────────────────────────────
  async listSlots(): Promise<KeySlot[]> {
    return readSlots(this.backend);
  }

  /** Wraps the repository key material under another master key (a new slot). */
  async addSlot(master: MasterKey, label?: string): Promise<KeySlot> {
    const slot = await makeSlot(master, this.#material, this.config.id, label);
    await this.backend.put(`${KEY_PREFIX.keys}${slot.id}`, encodeSlot(slot));
    return slot;
  }

  async removeSlot(slotId: string): Promise<void> {
    await this.backend.delete(`${KEY_PREFIX.keys}${slotId}`);
  }

  // ── encrypted objects ────────────────────────────────────────────────────────────
  async putObject(kind: ObjectKind, key: string, body: Buffer): Promise<Buffer> {
    const sealed = encodeObject(this.keys.encKey, kind, body);
    await this.backend.put(key, sealed);
    return sealed;
  }

  sealObject(kind: ObjectKind, body: Buffer): Buffer {
    return encodeObject(this.keys.encKey, kind, body);
  }

  async getObject(kind: ObjectKind, key: string): Promise<Buffer> {
    return decodeObject(this.keys.encKey, kind, await this.backend.get(key), key);
  }

  async putJson(kind: ObjectKind, key: string, value: unknown): Promise<void> {
    await this.putObject(kind, key, Buffer.from(JSON.stringify(value)));
  }

  async getJson(kind: ObjectKind, key: string): Promise<Record<string, unknown>> {
    return parseJson(await this.getObject(kind, key), key);
  }

  /** Loads every index file (a few in parallel) into one in-memory index. */
  async loadIndex(): Promise<LoadedIndex> {
    const index = new ChunkIndex();
    const files = new Map<string, readonly IndexedPack[]>();
    const keys = (await listAll(this.backend, KEY_PREFIX.index)).map((o) => o.key);
    await forEachLimit(keys, 8, async (key) => {
      const id = baseName(key);
      if (!HEX64_RE.test(id)) throw new StoreCorruptError(`unexpected object ${key}`, { object: key });
      const packs = decodeIndex(await this.getObject('index', key), key);
      files.set(id, packs);
    });
    // Add in a stable order so "first location wins" does not depend on fetch timing.
    for (const id of [...files.keys()].sort())
      for (const p of files.get(id) ?? []) index.addPack(p.packId, p.entries);
    return { index, files };
  }
}

async function readSlots(backend: Backend): Promise<KeySlot[]> {
  const objs = await listAll(backend, KEY_PREFIX.keys);
  const slots: KeySlot[] = [];
  for (const o of objs) slots.push(decodeSlot(await backend.get(o.key), baseName(o.key)));
  return slots;
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure wins. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
}
