import { AppError } from "../lib/errors.js";
import { serializeError } from "../lib/logger.js";
import type { UsageRecord, UsageRepo } from "../store/ports.js";
import { checkUsageRecord } from "./usage-record-check.js";

/** The two log levels the recorder uses (a pino logger fits). */
export type UsageRecorderLogger = {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
};

export type UsageRecorderDeps = {
  /** Must ignore ids it already stored: a retried batch is written again as a whole. */
  usage: Pick<UsageRepo, "insertBatch">;
  logger?: UsageRecorderLogger;
  /** Records per `insertBatch` call. Default 200. */
  batchSize?: number;
  /** How often queued records are written when fewer than a batch are waiting. Default 250 ms. */
  flushIntervalMs?: number;
  /** Records held (queued plus being written) before new ones are dropped. Default 50,000. */
  maxQueue?: number;
  /** Write attempts `close()` makes before giving up. Default 5. */
  closeAttempts?: number;
};

export type UsageRecorderStats = {
  /** Accepted and not yet written (including a batch being written). */
  queued: number;
  written: number;
  /** Refused: queue full, recorder closed, or an invalid record. */
  dropped: number;
  failedBatches: number;
};

export type UsageRecorder = {
  /** Queues a record. Never blocks and never throws; drops (and counts) when it cannot queue. */
  record(record: UsageRecord): void;
  /** Writes everything queued now, ignoring the retry backoff; rejects when a batch fails (it stays queued). */
  flush(): Promise<void>;
  /**
   * Stops the timer, refuses new records and writes every queued one, retrying a few times.
   * Rejects with an `unavailable` AppError when records are still unwritten after the last try.
   */
  close(): Promise<void>;
  stats(): UsageRecorderStats;
};

const MAX_BACKOFF_MS = 30_000;
const CLOSE_RETRY_BASE_MS = 100;

/** A FIFO that takes batches from the front and can put a failed batch back there. */
function createRecordQueue() {
  let items: UsageRecord[] = [];
  let head = 0;
  return {
    size: (): number => items.length - head,
    push(record: UsageRecord): void {
      items.push(record);
    },
    take(count: number): UsageRecord[] {
      const batch = items.slice(head, head + count);
      head += batch.length;
      // Drop the consumed prefix now and then instead of shifting on every batch.
      if (head > 1_024 && head * 2 >= items.length) {
        items = items.slice(head);
        head = 0;
      }
      return batch;
    },
    putBack(batch: readonly UsageRecord[]): void {
      items = [...batch, ...items.slice(head)];
      head = 0;
    },
  };
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 1) throw new RangeError(`Usage recorder option ${name} must be a positive integer`);
  return chosen;
}

/**
 * A bounded, batched writer of usage records, off the response path. Batches are written one
 * at a time by an unref'd timer (it never keeps the process alive). A failed batch goes back to
 * the front of the queue and is retried with exponential backoff; the repository ignores ids it
 * already holds, so a batch whose commit succeeded but whose acknowledgement was lost is not
 * counted twice.
 */
export function createUsageRecorder(deps: UsageRecorderDeps): UsageRecorder {
  const batchSize = positiveInteger(deps.batchSize, 200, "batchSize");
  const flushIntervalMs = positiveInteger(deps.flushIntervalMs, 250, "flushIntervalMs");
  const maxQueue = positiveInteger(deps.maxQueue, 50_000, "maxQueue");
  const closeAttempts = positiveInteger(deps.closeAttempts, 5, "closeAttempts");
  const { usage, logger } = deps;

  const pending = createRecordQueue();
  let inFlight = 0;
  let written = 0;
  let dropped = 0;
  let failedBatches = 0;
  let consecutiveFailures = 0;
  let retryAt = 0;
  let isDropping = false;
  let isClosed = false;
  let writing: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  const queued = (): number => pending.size() + inFlight;

  // A logger that throws must not turn into an exception in the response path.
  function log(level: "warn" | "error", obj: object, msg: string): void {
    try {
      logger?.[level](obj, msg);
    } catch {
      // Nothing sensible to do: logging itself failed.
    }
  }

  function drop(reason: "full" | "closed" | "invalid", detail: object = {}): void {
    dropped += 1;
    if (reason === "invalid") {
      log("error", { ...detail, dropped }, "Usage record refused: it could never be stored");
      return;
    }
    // One warning when dropping starts, not one per record.
    if (!isDropping) log("warn", { reason, dropped, maxQueue }, "Usage records are being dropped");
    isDropping = true;
  }

  function backoffMs(failures: number): number {
    const ceiling = Math.min(MAX_BACKOFF_MS, flushIntervalMs * 2 ** Math.min(failures, 16));
    // Jitter spreads the retries of several instances that lost the database at once.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /**
   * Writes one batch, then more while full batches are waiting. A remainder waits for the next
   * full batch or the timer: written at once, it made about half of all commits at high rates,
   * each for a handful of records.
   */
  async function writeQueued(): Promise<void> {
    if (pending.size() === 0) return;
    do {
      const batch = pending.take(batchSize);
      inFlight = batch.length;
      try {
        await usage.insertBatch(batch);
      } catch (error) {
        pending.putBack(batch);
        inFlight = 0;
        failedBatches += 1;
        consecutiveFailures += 1;
        retryAt = Date.now() + backoffMs(consecutiveFailures);
        log("error", { error: serializeError(error), records: batch.length, queued: queued(), failures: consecutiveFailures }, "Usage batch not written; will retry");
        throw error;
      }
      inFlight = 0;
      written += batch.length;
      consecutiveFailures = 0;
      retryAt = 0;
    } while (pending.size() >= batchSize);
  }

  /** One writer at a time: a second caller joins the write in progress. */
  function startWriting(): Promise<void> {
    writing ??= writeQueued().finally(() => {
      writing = undefined;
    });
    return writing;
  }

  async function flush(): Promise<void> {
    while (writing !== undefined || pending.size() > 0) await startWriting();
  }

  // A full batch is written at once (on the next turn of the event loop, never inside the
  // caller's response path), so at high rates records are held for milliseconds, not for the
  // whole interval: fewer of them live long enough to be promoted to V8's old generation.
  let isWriteScheduled = false;
  function writeSoon(): void {
    if (isWriteScheduled || writing !== undefined || Date.now() < retryAt) return;
    isWriteScheduled = true;
    setImmediate(() => {
      isWriteScheduled = false;
      if (writing === undefined && pending.size() > 0) startWriting().catch(() => undefined);
    }).unref();
  }

  const timer = setInterval(() => {
    if (writing !== undefined || pending.size() === 0 || Date.now() < retryAt) return;
    // Failures are logged and counted in writeQueued; the batch stays queued for the next tick.
    startWriting().catch(() => undefined);
  }, flushIntervalMs);
  timer.unref();

  async function drainForClose(): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await flush();
        return;
      } catch (error) {
        if (attempt >= closeAttempts) {
          log("error", { unwritten: queued(), attempts: attempt }, "Usage records lost at shutdown: the store did not take them");
          throw new AppError("unavailable", "Usage records could not be written before shutdown", {
            internal: { unwritten: queued(), attempts: attempt },
            cause: error,
          });
        }
        // A referenced timer on purpose: shutdown must wait for this retry, not exit under it.
        await new Promise((resolve) => setTimeout(resolve, CLOSE_RETRY_BASE_MS * 2 ** (attempt - 1)));
      }
    }
  }

  return {
    record(record: UsageRecord): void {
      try {
        if (isClosed) return drop("closed");
        if (queued() >= maxQueue) return drop("full");
        const checked = checkUsageRecord(record);
        if (!checked.ok) return drop("invalid", { reason: checked.reason, id: typeof record.id === "string" ? record.id.slice(0, 64) : null });
        pending.push(checked.record);
        isDropping = false;
        if (pending.size() >= batchSize) writeSoon();
      } catch {
        // `record` sits in the response path: whatever went wrong, the response goes on.
        dropped += 1;
      }
    },

    flush,

    close(): Promise<void> {
      closing ??= (async () => {
        isClosed = true;
        clearInterval(timer);
        await drainForClose();
      })();
      return closing;
    },

    stats(): UsageRecorderStats {
      return { queued: queued(), written, dropped, failedBatches };
    },
  };
}
