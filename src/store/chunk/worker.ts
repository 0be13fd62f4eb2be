/**
 * Worker thread entry: hashes and seals batches for the main thread (pool.ts). Batch
 * memory is shared: each buffer arrives once (with the first request naming it) and is
 * kept by id, so requests carry no bulk data. A worker serves one write at a time and is
 * reused by the next (pool.ts): `init` brings a write's keys, `reset` forgets them.
 */
import { parentPort } from 'node:worker_threads';
import { hashBlocks, sealBlocks } from './work.js';
import type { SharedRef, WorkerRequest, WorkerResponse } from './pool.js';

const port = parentPort;
let encKey = Buffer.alloc(0);
let idKey = Buffer.alloc(0);
/** Shared batch buffers by id (pool.ts: WorkerCodec#ref); they live as long as the codec. */
const buffers = new Map<number, Buffer>();

function buffer(ref: SharedRef): Buffer {
  if (ref.buffer) buffers.set(ref.id, Buffer.from(ref.buffer));
  const b = buffers.get(ref.id);
  if (!b) throw new Error(`unknown batch buffer ${ref.id}`);
  return b;
}

port?.on('message', (m: WorkerRequest) => {
  if (m.op === 'init' || m.op === 'reset') {
    // Copies: the keys must not alias memory of a message (or survive a reset).
    encKey = m.op === 'init' ? Buffer.from(m.encKey) : Buffer.alloc(0);
    idKey = m.op === 'init' ? Buffer.from(m.idKey) : Buffer.alloc(0);
    buffers.clear();
    return;
  }
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
