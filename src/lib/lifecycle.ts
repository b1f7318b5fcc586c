/**
 * Tracks calls in flight so a graceful shutdown can wait for them (streams included) and tell
 * clients to close their keep-alive connections instead of sending more.
 */
export function createLifecycle() {
  let inFlight = 0;
  let closing = false;
  let waiters: (() => void)[] = [];

  return {
    get closing(): boolean {
      return closing;
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
  };
}

export type Lifecycle = ReturnType<typeof createLifecycle>;
