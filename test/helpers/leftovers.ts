/** Checks that a test left nothing behind: no process, no file. */
import { stat } from 'node:fs/promises';

/** True while process `pid` exists (signal 0 only checks). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True when nothing exists at `path`. */
export async function missing(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) === undefined;
}
