/**
 * Materialising an instance: QEMU streams every block its overlays still read from the
 * image (over NBD) into the overlays (`block-stream` without a base, QEMU's
 * docs/interop/live-block-operations.rst), while the guest runs. When every stream
 * completes, QEMU has dropped the backing files — from the running drives and from the
 * overlays' headers — and the instance no longer needs the image store or this process:
 * a cutover instance becomes a standalone VM. A marker file records it for a restarted
 * launch host.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LaunchFailedError } from '../../errors/index.js';

export const MATERIALIZED_MARKER = 'materialized';

export interface StreamProgress {
  readonly done: number;
  readonly total: number;
}

interface QmpJob {
  readonly id: string;
  readonly status: string;
  readonly 'current-progress': number;
  readonly 'total-progress': number;
  readonly error?: string;
}

export interface Materializable {
  readonly dir: string;
  readonly overlays: readonly string[];
  qmp(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<unknown>;
}

/**
 * Streams each disk's backing into its overlay and waits for all; `onProgress` gets bytes
 * done/total summed over the disks. A failed stream (the image server went away, the disk
 * is full) rejects with QEMU's error; the overlay then still has its backing and works.
 */
export async function streamBackings(
  inst: Materializable,
  o: { pollMs?: number; onProgress?: (p: StreamProgress) => void; signal?: AbortSignal } = {},
): Promise<void> {
  const ids = inst.overlays.map((_, i) => `ferry-stream-${i}`);
  for (let i = 0; i < ids.length; i++) {
    // auto-dismiss off: the concluded job stays queryable, so its error is never missed.
    await inst.qmp('block-stream', { 'job-id': ids[i], device: `disk${i}`, 'auto-dismiss': false });
  }
  const pending = new Set(ids);
  const failures: string[] = [];
  while (pending.size > 0) {
    o.signal?.throwIfAborted();
    const jobs = ((await inst.qmp('query-jobs')) as QmpJob[]).filter((j) => ids.includes(j.id));
    o.onProgress?.({
      done: jobs.reduce((n, j) => n + j['current-progress'], 0),
      total: jobs.reduce((n, j) => n + j['total-progress'], 0),
    });
    for (const j of jobs) {
      if (!pending.has(j.id) || j.status !== 'concluded') continue;
      if (j.error) failures.push(`${j.id}: ${j.error}`);
      await inst.qmp('job-dismiss', { id: j.id });
      pending.delete(j.id);
    }
    for (const id of pending) if (!jobs.some((j) => j.id === id)) pending.delete(id); // gone: dismissed elsewhere
    if (pending.size > 0) await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
  }
  if (failures.length > 0) {
    throw new LaunchFailedError(`streaming the image into the instance failed: ${failures.join('; ')}`);
  }
  await writeFile(join(inst.dir, MATERIALIZED_MARKER), `${new Date().toISOString()}\n`, { mode: 0o600 });
}
