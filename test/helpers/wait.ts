/** Polling for a condition in tests, bounded: a timeout fails with what was awaited. */
export async function until(
  what: string,
  ok: () => boolean | Promise<boolean>,
  ms = 60_000,
  everyMs = 100,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
