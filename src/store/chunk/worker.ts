/**
 * Worker thread entry: hashes and seals batches for the main thread (pool.ts). The batch
 * buffers are transferred here and back with the results (no copies). Keys arrive once, in
 * workerData.
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
  const transfer: ArrayBuffer[] = [m.input];
  try {
    const bytes = Buffer.from(m.input, 0, m.length);
    if (m.op === 'hash') {
      const r = hashBlocks(idKey, bytes, m.blockSize);
      reply = { seq: m.seq, op: 'hash', input: m.input, ids: r.ids, digests: r.digests, zero: r.zero };
    } else {
      transfer.push(m.output);
      const ids = Buffer.from(m.ids.buffer, m.ids.byteOffset, m.ids.byteLength);
      const p = sealBlocks(encKey, bytes, m.blockSize, m.picks, ids, Buffer.from(m.output));
      reply = {
        seq: m.seq,
        op: 'seal',
        input: m.input,
        output: m.output,
        length: p.bytes.length,
        meta: p.meta,
        blobIds: p.ids,
      };
    }
  } catch (err) {
    reply = {
      seq: m.seq,
      op: 'error',
      message: (err as Error).message,
      input: m.input,
      ...(m.op === 'seal' ? { output: m.output } : {}),
    };
  }
  port.postMessage(reply, transfer);
});
