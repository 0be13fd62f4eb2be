/**
 * Helpers for the launch tests: store images made from in-memory bytes (the disks an NBD
 * server serves), and a raw client socket for hostile-client tests.
 */
import { connect, type Socket } from 'node:net';
import type { Disk } from '../../src/disk/index.js';
import { openImageDisk, writeImage, type Repository } from '../../src/store/index.js';
import { memoryDisk, memoryRepo } from '../store/helpers.js';

export interface StoredImage {
  readonly repo: Repository;
  readonly imageId: string;
  /** A fresh read view of disk 0 (closing it releases the read lock). */
  open(): Promise<Disk>;
}

/** Writes `data` as a one-disk server image to an in-memory repository. */
export async function storeImage(data: Buffer, repo?: Repository): Promise<StoredImage> {
  const r = repo ?? (await memoryRepo());
  const image = await writeImage(r, {
    name: 'launch-test',
    disks: [{ name: 'd0', disk: await memoryDisk(data) }],
  });
  return {
    repo: r,
    imageId: image.id,
    open: async () => (await openImageDisk(r, image.id, 0)).disk,
  };
}

/** Bytes a raw socket received, with a way to wait for a count of them or for the close. */
export class RawClient {
  readonly socket: Socket;
  #data = Buffer.alloc(0);
  #closed = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#data = Buffer.concat([this.#data, d]);
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves with exactly `n` more bytes, or rejects if the server closes first. */
  async take(n: number, timeoutMs = 5000): Promise<Buffer> {
    await this.#until(() => this.#data.length >= n || this.#closed, timeoutMs);
    if (this.#data.length < n) throw new Error(`server closed after ${this.#data.length} of ${n} bytes`);
    const out = this.#data.subarray(0, n);
    this.#data = this.#data.subarray(n);
    return out;
  }

  /** Resolves when the server closed the connection (rejects after the timeout). */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.#until(() => this.#closed, timeoutMs);
    if (!this.#closed) throw new Error('server did not close the connection');
  }

  write(buf: Buffer): void {
    this.socket.write(buf);
  }

  close(): void {
    this.socket.destroy();
  }

  async #until(done: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}
