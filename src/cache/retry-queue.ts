/** Default for `baseDelayMs`. */
const DEFAULT_BASE_DELAY_MS = 100;
/** Default for `maxDelayMs`. */
const DEFAULT_MAX_DELAY_MS = 5_000;

export type RetryQueueOptions = {
  /** First wait after a failure, in milliseconds; doubled after every round that left work. Default `100`. */
  baseDelayMs?: number;
  /** Longest wait between two rounds, in milliseconds. Default `5000`. */
  maxDelayMs?: number;
  /** Told how many tasks wait whenever that number changes. */
  onSizeChange?: (size: number) => void;
  /** Told of every failed attempt. */
  onError?: (error: unknown) => void;
};

/**
 * Tasks that failed once and must still happen (announcing a committed change), retried with
 * exponential backoff until each succeeds. Tasks must be idempotent: an attempt whose answer was
 * lost may have done its work. The queue lives in memory; what it cannot finish before the
 * process ends is covered by the caller's own fallback (the coordinator's change lease).
 */
export type RetryQueue = {
  /** Queues a task that already failed once. */
  add(task: () => Promise<void>): void;
  size(): number;
  /** Runs a round now (the backend just came back) instead of waiting for the timer. */
  retryNow(): Promise<void>;
  /** One last round, then stops; resolves when that round is over. */
  close(): Promise<void>;
};

export function createRetryQueue(options: RetryQueueOptions = {}): RetryQueue {
  const baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const tasks: (() => Promise<void>)[] = [];
  let delayMs = baseDelayMs;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;
  let isClosed = false;

  const reportSize = () => options.onSizeChange?.(tasks.length);

  function schedule(): void {
    if (timer !== undefined || isClosed || tasks.length === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void runRound();
    }, delayMs);
    timer.unref();
  }

  /** One attempt at every queued task; rounds never overlap. */
  function runRound(): Promise<void> {
    round ??= (async () => {
      for (const task of tasks.splice(0)) {
        try {
          await task();
        } catch (error) {
          options.onError?.(error);
          tasks.push(task);
        }
      }
      reportSize();
      delayMs = tasks.length === 0 ? baseDelayMs : Math.min(delayMs * 2, maxDelayMs);
    })().finally(() => {
      round = undefined;
      schedule();
    });
    return round;
  }

  return {
    add(task: () => Promise<void>): void {
      tasks.push(task);
      reportSize();
      schedule();
    },
    size: () => tasks.length,
    async retryNow(): Promise<void> {
      if (tasks.length === 0) return;
      clearTimeout(timer);
      timer = undefined;
      await runRound();
    },
    async close(): Promise<void> {
      clearTimeout(timer);
      timer = undefined;
      if (tasks.length > 0) await runRound();
      isClosed = true;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
