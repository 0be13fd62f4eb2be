/**
 * An NBD export as a disk-engine ByteSource: strict reads (a range past the export end is
 * FERRY_IMAGE_TRUNCATED, as for files), so every disk-engine consumer — raw reads,
 * checksums, copies — works on a live VM's disk exported by QEMU.
 */
import type { ByteSource } from '../../../disk/index.js';
import { NbdClient, type NbdClientOptions, type NbdEndpoint } from './client.js';

export class NbdByteSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  readonly client: NbdClient;
  readonly #owned: boolean;

  /** Wraps a connected client; `owned` (default) makes close() disconnect it. */
  constructor(client: NbdClient, options: { readonly name?: string; readonly owned?: boolean } = {}) {
    this.client = client;
    this.size = client.size;
    this.name = options.name ?? client.info.exportName;
    this.#owned = options.owned ?? true;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.client.read(offset, length);
  }

  async close(): Promise<void> {
    if (this.#owned) await this.client.close();
  }
}

/** Connects to an NBD export and returns it as a ByteSource (closing the source disconnects). */
export async function openNbdSource(
  endpoint: NbdEndpoint,
  options: NbdClientOptions,
): Promise<NbdByteSource> {
  return new NbdByteSource(await NbdClient.connect(endpoint, options));
}
