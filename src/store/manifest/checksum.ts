/**
 * The per-image content checksum, `sha256-tree` (docs/store.md):
 *   page digest = SHA-256(digest(block 0) ‖ … ‖ digest(block F−1)),  digest = SHA-256(block bytes)
 *   checksum    = SHA-256("ferry sha256-tree v1" ‖ size u64 ‖ B u32 ‖ F u32 ‖ page digests…)
 * Fed either with block digests (the writer: workers already hashed each block) or with
 * bytes (an export recomputing it from what it emits). Zero pages take a cached shortcut.
 */
import { createHash, type Hash } from 'node:crypto';
import { InternalError } from '../../errors/index.js';
import { zeroDigest } from '../chunk/work.js';
import { ID_BYTES } from '../layout.js';
import type { TreeShape } from './tree.js';

export const CHECKSUM_ALGORITHM = 'sha256-tree';
const ZERO_BYTES = Buffer.alloc(1 << 20);

export class TreeChecksum {
  readonly #shape: TreeShape;
  readonly #top: Hash;
  readonly #onPage: ((page: number, digest: Buffer) => void) | undefined;
  #block = 0;
  #page = 0;
  #inPage = 0;
  #pageHash: Hash = createHash('sha256');
  /** Byte mode: the block being assembled. */
  #partial: Hash | undefined;
  #partialBytes = 0;
  #zeroPage: Buffer | undefined;

  constructor(shape: TreeShape, onPage?: (page: number, digest: Buffer) => void) {
    this.#shape = shape;
    this.#onPage = onPage;
    const head = Buffer.alloc(16);
    head.writeBigUInt64LE(BigInt(shape.virtualSize), 0);
    head.writeUInt32LE(shape.blockSize, 8);
    head.writeUInt32LE(shape.fanout, 12);
    this.#top = createHash('sha256').update('ferry sha256-tree v1').update(head);
  }

  get blocksDone(): number {
    return this.#block;
  }

  /** Resume: digests of the first pages (all of them complete). */
  seedPages(digests: readonly Buffer[]): void {
    if (this.#block !== 0) throw new InternalError('seedPages on a started checksum');
    for (const d of digests) {
      this.#top.update(d);
      this.#block = Math.min(this.#shape.blocks, this.#block + this.#shape.fanout);
      this.#page++;
    }
  }

  #blockBytes(i: number): number {
    return i === this.#shape.blocks - 1 ? this.#shape.lastBlockBytes : this.#shape.blockSize;
  }

  pushDigest(d: Buffer): void {
    if (this.#block >= this.#shape.blocks) throw new InternalError('more blocks than the disk has');
    this.#pageHash.update(d);
    this.#block++;
    if (++this.#inPage === this.#shape.fanout || this.#block === this.#shape.blocks) this.#endPage();
  }

  pushDigests(digests: Buffer): void {
    for (let at = 0; at < digests.length; at += ID_BYTES)
      this.pushDigest(digests.subarray(at, at + ID_BYTES));
  }

  pushZeroBlocks(count: number): void {
    const { fanout, blocks } = this.#shape;
    let left = count;
    while (left > 0) {
      if (this.#inPage === 0 && left >= fanout && this.#block + fanout < blocks) {
        this.#zeroPage ??= this.#pageOfZeros();
        this.#top.update(this.#zeroPage);
        this.#onPage?.(this.#page++, this.#zeroPage);
        this.#block += fanout;
        left -= fanout;
      } else {
        this.pushDigest(zeroDigest(this.#blockBytes(this.#block)));
        left--;
      }
    }
  }

  /** Byte mode: the next bytes of the disk. */
  update(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      const want = this.#blockBytes(this.#block) - this.#partialBytes;
      const take = Math.min(want, bytes.length - at);
      if (this.#partialBytes === 0 && take === want) {
        this.pushDigest(
          createHash('sha256')
            .update(bytes.subarray(at, at + take))
            .digest(),
        );
      } else {
        this.#partial ??= createHash('sha256');
        this.#partial.update(bytes.subarray(at, at + take));
        this.#partialBytes += take;
        if (this.#partialBytes === this.#blockBytes(this.#block)) {
          const d = this.#partial.digest();
          this.#partial = undefined;
          this.#partialBytes = 0;
          this.pushDigest(d);
        }
      }
      at += take;
    }
  }

  /** Byte mode: `length` zero bytes. */
  zeros(length: number): void {
    let left = length;
    if (this.#partialBytes > 0) {
      const n = Math.min(left, this.#blockBytes(this.#block) - this.#partialBytes);
      this.#feedZeros(n);
      left -= n;
    }
    if (left <= 0) return;
    let whole = 0;
    while (
      left > 0 &&
      this.#block + whole < this.#shape.blocks &&
      left >= this.#blockBytes(this.#block + whole)
    ) {
      left -= this.#blockBytes(this.#block + whole);
      whole++;
    }
    this.pushZeroBlocks(whole);
    if (left > 0) this.#feedZeros(left);
  }

  #feedZeros(n: number): void {
    for (let left = n; left > 0; left -= ZERO_BYTES.length)
      this.update(ZERO_BYTES.subarray(0, Math.min(left, ZERO_BYTES.length)));
  }

  digest(): string {
    if (this.#block !== this.#shape.blocks || this.#partialBytes !== 0) {
      throw new InternalError(`checksum incomplete: ${this.#block} of ${this.#shape.blocks} blocks`);
    }
    return `${CHECKSUM_ALGORITHM}:${this.#top.digest('hex')}`;
  }

  #endPage(): void {
    const d = this.#pageHash.digest();
    this.#top.update(d);
    this.#onPage?.(this.#page++, d);
    this.#pageHash = createHash('sha256');
    this.#inPage = 0;
  }

  #pageOfZeros(): Buffer {
    const h = createHash('sha256');
    const d = zeroDigest(this.#shape.blockSize);
    for (let i = 0; i < this.#shape.fanout; i++) h.update(d);
    return h.digest();
  }
}
