/**
 * Waiting in tests, one way: on a condition, never a fixed sleep, with a generous timeout (the
 * machine may be loaded) and a message that says what did not happen.
 */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The first value `probe` gives that is not undefined, probed every `everyMs`; rejects naming `what` after `timeoutMs`. */
export async function eventually<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
  what = 'a value',
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Resolves once `check` holds, checked every `everyMs`; rejects naming `what` after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition', everyMs = 50): Promise<void> {
  await eventually(async () => ((await check()) ? true : undefined), timeoutMs, what, everyMs);
}
