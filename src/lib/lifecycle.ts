/** A running stream a shutdown can end early (the relay's pump). */
export type CuttableStream = { cut(): void };

/**
 * Tracks calls in flight so a graceful shutdown can wait for them (streams included), tell
 * clients to close their keep-alive connections instead of sending more, and end the streams
 * still running at the drain deadline.
 */
export function createLifecycle() {
  let inFlight = 0;
  let closing = false;
  let isCut = false;
  let waiters: (() => void)[] = [];
  const streams = new Set<CuttableStream>();

  return {
    get closing(): boolean {
      return closing;
    },
    get inFlight(): number {
      return inFlight;
    },
    /** The drain deadline has passed: what ends now was cut by the shutdown. */
    get isCut(): boolean {
      return isCut;
    },
    /** The shutdown has begun: answers from now on close their connections. */
    markClosing(): void {
      closing = true;
    },
    enter(): void {
      inFlight += 1;
    },
    leave(): void {
      inFlight -= 1;
      if (inFlight === 0) for (const resolve of waiters.splice(0)) resolve();
    },
    /** Marks the shutdown; resolves once nothing is in flight, or after `deadlineMs`. */
    async drain(deadlineMs: number): Promise<void> {
      closing = true;
      if (inFlight === 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((waiter) => waiter !== done);
          resolve();
        }, deadlineMs);
        timer.unref();
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.push(done);
      });
    },
    /** A stream starts: it is cut at once when the deadline has already passed. */
    trackStream(stream: CuttableStream): void {
      if (isCut) stream.cut();
      else streams.add(stream);
    },
    untrackStream(stream: CuttableStream): void {
      streams.delete(stream);
    },
    /** The drain deadline: ends every stream still running (and any that starts later). Returns how many. */
    cutStreams(): number {
      isCut = true;
      const running = [...streams];
      streams.clear();
      for (const stream of running) stream.cut();
      return running.length;
    },
  };
}

export type Lifecycle = ReturnType<typeof createLifecycle>;

/** What the relay needs of the lifecycle. */
export type StreamRegistry = Pick<Lifecycle, "trackStream" | "untrackStream">;
