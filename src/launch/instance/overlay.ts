/**
 * The copy-on-write overlay of one instance disk: a qcow2 file whose backing file is the
 * image's NBD export, so the instance reads the image in place and writes only to the
 * overlay (docs/launch.md). Made with `qemu-img create -u`: `-u` (unsafe) skips opening
 * the backing file — the size is known, and opening it would cost an NBD round trip per
 * disk for nothing. The backing name is the `nbd+unix://` URI, with format `raw`.
 *
 * qemu-img rather than Ferry's qcow2 writer: the launch host runs QEMU anyway, and a
 * header with a backing file name is exactly what qemu-img writes best.
 */
import { execFile } from 'node:child_process';
import { LaunchFailedError } from '../../errors/index.js';

/** qemu-img create takes milliseconds; a minute means it is stuck. */
const CREATE_TIMEOUT_MS = 60_000;
/** Output kept from qemu-img (it prints one line on error). */
const MAX_OUTPUT_BYTES = 64 * 1024;

export function createOverlay(qemuImg: string, path: string, backing: string, size: number): Promise<void> {
  const args = ['create', '-q', '-f', 'qcow2', '-u', '-b', backing, '-F', 'raw', path, String(size)];
  return new Promise((resolve, reject) => {
    execFile(
      qemuImg,
      args,
      { timeout: CREATE_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES, killSignal: 'SIGKILL' },
      (err, _stdout, stderr) => {
        if (!err) return resolve();
        reject(
          new LaunchFailedError(
            `qemu-img could not create the overlay ${path}: ${String(stderr).trim() || err.message}`,
            {
              path,
              stderr: String(stderr).slice(0, 2000),
            },
          ),
        );
      },
    );
  });
}
