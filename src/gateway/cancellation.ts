/**
 * Whether one gateway call was given up by its client, and who to tell. An `AbortController`
 * does the same job, but its `EventTarget` machinery is a measurable share of a call's CPU, and a
 * call needs only this much: a flag and, at any time, one or two listeners.
 */
export type Cancellation = {
  readonly aborted: boolean;
  /** Calls `listener` once on abort (at once when already aborted); returns the unsubscribe. */
  onAbort(listener: () => void): () => void;
};

export function createCancellation(): Cancellation & { abort(): void } {
  let aborted = false;
  let listeners: (() => void)[] = [];
  return {
    get aborted() {
      return aborted;
    },
    onAbort(listener) {
      if (aborted) {
        listener();
        return () => {};
      }
      listeners.push(listener);
      return () => {
        listeners = listeners.filter((candidate) => candidate !== listener);
      };
    },
    abort() {
      if (aborted) return;
      aborted = true;
      const toCall = listeners;
      listeners = [];
      for (const listener of toCall) listener();
    },
  };
}
