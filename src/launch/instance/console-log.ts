/**
 * An instance's serial console log, bounded on disk and on read. The guest writes what it
 * likes to its serial port, so QEMU's log file is untrusted, unbounded output: every
 * second the file is checked, and once it exceeds `capBytes` its last `capBytes` go to
 * `console.log.1` and the file is truncated (QEMU opened it with O_APPEND, `append=on`,
 * so its next write lands at the new end). Disk use stays ≈ 2 × cap plus one second of
 * output; a few bytes written between the copy and the truncation can be lost.
 */
import { open, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';

/** Per-file cap: 8 MiB, far more than a boot log (a Linux boot writes ~100 KiB). */
export const DEFAULT_CONSOLE_CAP_BYTES = 8 * 1024 * 1024;
/** Default and largest tail `read` returns. */
export const DEFAULT_CONSOLE_READ_BYTES = 1024 * 1024;
export const MAX_CONSOLE_READ_BYTES = 2 * DEFAULT_CONSOLE_CAP_BYTES;
const CHECK_INTERVAL_MS = 1000;

async function size(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** The last `n` bytes of a file (fewer if it is shorter; none if it is missing). */
async function tail(path: string, n: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const total = (await fh.stat()).size;
    const len = Math.min(n, total);
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, total - len);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export class ConsoleLog {
  readonly path: string;
  readonly rotated: string;
  readonly #cap: number;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(path: string, capBytes = DEFAULT_CONSOLE_CAP_BYTES) {
    this.path = path;
    this.rotated = `${path}.1`;
    this.#cap = capBytes;
  }

  /** Starts the size checks (QEMU running). */
  start(): void {
    this.#timer ??= setInterval(() => void this.check(), CHECK_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Rotates when the log is over its cap. Public for tests; never throws. */
  async check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      if ((await size(this.path)) <= this.#cap) return;
      const keep = await tail(this.path, this.#cap);
      const tmp = `${this.rotated}.tmp`;
      await writeFile(tmp, keep);
      await rename(tmp, this.rotated);
      await truncate(this.path, 0);
    } catch {
      // The instance may be going away; the next check tries again.
    } finally {
      this.#checking = false;
    }
  }

  /** The last `maxBytes` of the console output (rotated part included), as text. */
  async read(maxBytes = DEFAULT_CONSOLE_READ_BYTES): Promise<string> {
    const n = Math.max(0, Math.min(Math.floor(maxBytes), MAX_CONSOLE_READ_BYTES));
    const current = await tail(this.path, n);
    const older = current.length < n ? await tail(this.rotated, n - current.length) : Buffer.alloc(0);
    return Buffer.concat([older, current]).toString('utf8');
  }

  /** Removes the log files. */
  async remove(): Promise<void> {
    this.stop();
    await Promise.all([this.path, this.rotated, `${this.rotated}.tmp`].map((p) => rm(p, { force: true })));
  }
}
