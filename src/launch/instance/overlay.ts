/**
 * The copy-on-write overlay of one instance disk: a qcow2 file whose backing file is the
 * image's NBD export, so the instance reads the image in place and writes only to the
 * overlay (docs/launch.md). Made with `qemu-img create -u`: `-u` (unsafe) skips opening
 * the backing file — the size is known, and opening it would cost an NBD round trip per
 * disk for nothing.
 *
 * The backing name is a `json:` spec (nbdBacking), not an `nbd+unix://` URI: a URI cannot
 * carry `reconnect-delay`, and without it QEMU fails every read the moment the image
 * server goes away — with it, the instance survives a restart of the process serving
 * its image (docs/launch.md, "Server restarts"). In the header, the spec applies to every
 * QEMU that opens the overlay (first boot, start after stop, a restarted server's boot).
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

/**
 * How long (seconds) QEMU holds a guest read while the image server is away before
 * failing it with EIO: long enough for a server restart or an upgrade (stop, install,
 * start). After it, reads fail at once until QEMU's background reconnection (retried
 * every 1–16 s) finds the server again; then they succeed again. No `open-timeout`: QEMU
 * is only ever started by the process that serves the export, so the first connection
 * either works at once or the launch should fail at once.
 */
export const NBD_RECONNECT_DELAY_S = 300;

/**
 * The backing file name of an overlay reading export `exportName` on the unix socket
 * `socket`: `json:{"driver":"raw","file":{"driver":"nbd",…,"reconnect-delay":N}}`. The
 * outer `raw` matches the `-F raw` backing format (a top-level `nbd` driver would clash
 * with it); QEMU 7.2 (Debian 12) reads this from a qcow2 header.
 */
export function nbdBacking(socket: string, exportName: string): string {
  return `json:${JSON.stringify({
    driver: 'raw',
    file: {
      driver: 'nbd',
      server: { type: 'unix', path: socket },
      export: exportName,
      'reconnect-delay': NBD_RECONNECT_DELAY_S,
    },
  })}`;
}

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
