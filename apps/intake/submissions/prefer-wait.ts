const MAX_WAIT_SECONDS = 30;

/**
 * The `wait` preference of a `Prefer` header (RFC 7240), capped at 30 seconds. Anything
 * unparseable is ignored, as the RFC asks of preferences a server does not understand.
 */
export function preferredWaitSeconds(header: string | string[] | undefined): number {
  const values = Array.isArray(header) ? header : header ? [header] : [];
  for (const value of values) {
    for (const preference of value.split(',')) {
      const match = /^\s*wait\s*=\s*"?(\d{1,6})"?\s*(;.*)?$/i.exec(preference);
      if (match) return Math.min(Number(match[1]), MAX_WAIT_SECONDS);
    }
  }
  return 0;
}

/** Resolves when the value may have changed, or after at most `maxMs`. */
export type UntilChanged = (maxMs: number, signal?: AbortSignal) => Promise<unknown>;

/**
 * Loads until `load` reports a final state, the deadline passes, or the caller goes away;
 * `untilChanged` says when to load again. The value returned is always one loaded after the last
 * wake, so at the deadline it is as fresh as the deadline. `known`: the value as the caller
 * already knows it (committed by the caller itself), taken instead of the first load.
 */
export async function waitUntilFinal<T>(
  load: () => Promise<T>,
  isFinal: (value: T) => boolean,
  options: { seconds: number; untilChanged: UntilChanged; signal?: AbortSignal; known?: { value: T } },
): Promise<{ value: T; final: boolean }> {
  const deadline = Date.now() + options.seconds * 1000;
  let known = options.known;
  for (;;) {
    const value = known ? known.value : await load();
    known = undefined;
    if (isFinal(value)) return { value, final: true };
    const left = deadline - Date.now();
    if (left <= 0 || options.signal?.aborted) return { value, final: false };
    await options.untilChanged(left, options.signal);
  }
}
