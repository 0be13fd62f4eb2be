/**
 * Inflating one compressed cluster, the way QEMU's block/qcow2-threads.c does: the output
 * must be exactly one cluster (fewer bytes is corrupt), never more is produced (the output
 * is capped), and trailing input is ignored (the descriptor counts whole sectors, so the
 * input may include the start of the next compressed cluster).
 *
 * zlib: raw deflate (QEMU writes window bits 12; inflating with 15 accepts any window).
 *   Large clusters go to node:zlib's async API, which runs in libuv's thread pool, so the
 *   clusters of one read inflate in parallel; small ones inflate inline, where the
 *   per-call cost of the pool would dominate.
 * zstd: one frame, streamed into a cluster-sized buffer (zstd-napi DCtx), with the window
 *   capped so a forged frame header cannot make zstd allocate a large window.
 */
import { inflateRaw, inflateRawSync } from 'node:zlib';
import { promisify } from 'node:util';
import zstd from 'zstd-napi/binding.js';
import { DecompressionError } from '../../../errors/index.js';
import { COMPRESSION_ZSTD, ZSTD_WINDOW_LOG_MAX } from './layout.js';

const inflateRawAsync = promisify(inflateRaw);

/** Below this cluster size, inflating inline beats a round trip through the thread pool. */
const ASYNC_INFLATE_MIN_BYTES = 16 * 1024;

export interface ClusterInflater {
  /** Inflates `input` to exactly `clusterSize` bytes; `where` names the cluster in errors. */
  inflate(input: Buffer, where: { file: string; guest: number; host: number }): Promise<Buffer>;
}

export function createInflater(compressionType: number, clusterSize: number): ClusterInflater {
  return compressionType === COMPRESSION_ZSTD ? new ZstdInflater(clusterSize) : new ZlibInflater(clusterSize);
}

function failure(where: { file: string; guest: number; host: number }, why: string, cause?: unknown): Error {
  return new DecompressionError(
    `${where.file}: qcow2 compressed cluster at guest offset ${where.guest} (file offset ${where.host}) ${why}`,
    { format: 'qcow2', field: 'compressed_cluster', guest: where.guest, host: where.host },
    { cause },
  );
}

class ZlibInflater implements ClusterInflater {
  readonly #size: number;
  constructor(clusterSize: number) {
    this.#size = clusterSize;
  }

  async inflate(input: Buffer, where: { file: string; guest: number; host: number }): Promise<Buffer> {
    let out: Buffer;
    try {
      out =
        this.#size >= ASYNC_INFLATE_MIN_BYTES
          ? await inflateRawAsync(input, { maxOutputLength: this.#size })
          : inflateRawSync(input, { maxOutputLength: this.#size });
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw failure(
        where,
        code === 'ERR_BUFFER_TOO_LARGE' ? 'inflates to more than one cluster' : 'is not valid deflate data',
        err,
      );
    }
    if (out.length !== this.#size) throw failure(where, `inflates to ${out.length} bytes, not one cluster`);
    return out;
  }
}

class ZstdInflater implements ClusterInflater {
  readonly #size: number;
  #dctx: zstd.DCtx | undefined;
  constructor(clusterSize: number) {
    this.#size = clusterSize;
  }

  async inflate(input: Buffer, where: { file: string; guest: number; host: number }): Promise<Buffer> {
    const out = Buffer.allocUnsafe(this.#size);
    const dctx = this.#context();
    let inPos = 0;
    let outPos = 0;
    let remaining = 1;
    try {
      dctx.reset(zstd.ResetDirective.sessionOnly);
      // Each call makes progress or the loop stops: bounded by input + output size.
      while (outPos < this.#size) {
        const [hint, written, consumed] = dctx.decompressStream(out.subarray(outPos), input.subarray(inPos));
        if (written === 0 && consumed === 0) break;
        outPos += written;
        inPos += consumed;
        remaining = hint;
        if (hint === 0) break; // frame complete
      }
    } catch (err) {
      throw failure(where, 'is not a valid zstd frame', err);
    }
    if (outPos !== this.#size) throw failure(where, `inflates to ${outPos} bytes, not one cluster`);
    // QEMU: a frame still unfinished once the cluster is full decodes to more than a cluster.
    if (remaining !== 0) throw failure(where, 'inflates to more than one cluster');
    return out;
  }

  #context(): zstd.DCtx {
    if (!this.#dctx) {
      this.#dctx = new zstd.DCtx();
      this.#dctx.setParameter(zstd.DParameter.windowLogMax, ZSTD_WINDOW_LOG_MAX);
    }
    return this.#dctx;
  }
}
