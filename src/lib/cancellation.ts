/**
 * Whether one gateway call was given up by its client, and who to tell. An `AbortController`
 * does the same job, but its `EventTarget` machinery is a measurable share of a call's CPU, and a
 * call needs only this much: a flag and, at any time, one or two listeners. A class, so a call
 * allocates one small object and no closures.
 */
export type Cancellation = {
  readonly aborted: boolean;
  /** Calls `listener` once on abort (at once when already aborted); returns the unsubscribe. */
  onAbort(listener: () => void): () => void;
};

class CallCancellation implements Cancellation {
  #aborted = false;
  #listeners: (() => void)[] = [];

  get aborted(): boolean {
    return this.#aborted;
  }

  onAbort(listener: () => void): () => void {
    if (this.#aborted) {
      listener();
      return () => {};
    }
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((candidate) => candidate !== listener);
    };
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    const toCall = this.#listeners;
    this.#listeners = [];
    for (const listener of toCall) listener();
  }
}

export function createCancellation(): Cancellation & { abort(): void } {
  return new CallCancellation();
}
