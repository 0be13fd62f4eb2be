/**
 * Worker thread entry: hashes and seals batches for the main thread (pool.ts). The batch
 * bytes live in a SharedArrayBuffer owned by the main thread; results come back as
 * transferred buffers. Keys arrive once, in workerData.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { hashBlocks, sealBlocks } from './work.js';
import type { WorkerRequest, WorkerResponse } from './pool.js';

const data = workerData as { encKey: Uint8Array; idKey: Uint8Array };
const encKey = Buffer.from(data.encKey);
const idKey = Buffer.from(data.idKey);
const port = parentPort;

port?.on('message', (m: WorkerRequest) => {
  let reply: WorkerResponse;
  const transfer: ArrayBuffer[] = [];
  try {
    const bytes = Buffer.from(m.shared, m.offset, m.length);
    if (m.op === 'hash') {
      const r = hashBlocks(idKey, bytes, m.blockSize);
      reply = { seq: m.seq, op: 'hash', ids: r.ids, digests: r.digests, zero: r.zero };
    } else {
      const ids = Buffer.from(m.ids.buffer, m.ids.byteOffset, m.ids.byteLength);
      const p = sealBlocks(encKey, bytes, m.blockSize, m.picks, ids);
      transfer.push(p.bytes.buffer as ArrayBuffer);
      reply = { seq: m.seq, op: 'seal', bytes: p.bytes, meta: p.meta, blobIds: p.ids };
    }
  } catch (err) {
    reply = { seq: m.seq, op: 'error', message: (err as Error).message };
  }
  port.postMessage(reply, transfer);
});
