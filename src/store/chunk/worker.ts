/**
 * Worker thread entry: hashes and seals batches for the main thread (pool.ts). Batch
 * memory is shared: each buffer arrives once (with the first request naming it) and is
 * kept by id, so requests carry no bulk data. Keys arrive once, in workerData.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { hashBlocks, sealBlocks } from './work.js';
import type { SharedRef, WorkerRequest, WorkerResponse } from './pool.js';

const data = workerData as { encKey: Uint8Array; idKey: Uint8Array };
const encKey = Buffer.from(data.encKey);
const idKey = Buffer.from(data.idKey);
const port = parentPort;
/** Shared batch buffers by id (pool.ts: WorkerCodec#ref); they live as long as the codec. */
const buffers = new Map<number, Buffer>();

function buffer(ref: SharedRef): Buffer {
  if (ref.buffer) buffers.set(ref.id, Buffer.from(ref.buffer));
  const b = buffers.get(ref.id);
  if (!b) throw new Error(`unknown batch buffer ${ref.id}`);
  return b;
}

port?.on('message', (m: WorkerRequest) => {
  let reply: WorkerResponse;
  try {
    const bytes = buffer(m.input).subarray(0, m.length);
    if (m.op === 'hash') {
      const r = hashBlocks(idKey, bytes, m.blockSize);
      reply = { seq: m.seq, op: 'hash', ids: r.ids, digests: r.digests, zero: r.zero };
    } else {
      const output = buffer(m.output);
      const ids = Buffer.from(m.ids.buffer, m.ids.byteOffset, m.ids.byteLength);
      const p = sealBlocks(encKey, bytes, m.blockSize, Array.from(m.picks), ids, output);
      reply = { seq: m.seq, op: 'seal', length: p.bytes.length, meta: p.meta, blobIds: p.ids };
    }
  } catch (err) {
    reply = { seq: m.seq, op: 'error', message: (err as Error).message };
  }
  port.postMessage(reply);
});
