import { randomUUID } from "node:crypto";
import type { Clock } from "../lib/clock.js";
import type { ClaimedDelivery, DeliveryOutcome, NotificationRepo } from "../store/ports.js";
import { toOutcome } from "./deliver-notification.js";

/** The log calls the worker makes (pino's shape). */
export type WorkerLog = {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
};

export type DeliveryWorkerDeps = {
  notifications: Pick<NotificationRepo, "claimDue" | "finish" | "release">;
  deliver: (claimed: ClaimedDelivery) => Promise<DeliveryOutcome>;
  clock: Clock;
  log: WorkerLog;
  /** Pause between polls that found less than a full batch, in milliseconds. */
  pollIntervalMs: number;
  /**
   * How long a claimed delivery is this worker's, in milliseconds. Must outlast one attempt, which
   * is cut off at `attemptDeadlineMs`; after it another instance may take the delivery over.
   */
  leaseMs: number;
  attemptDeadlineMs: number;
  /** Deliveries claimed (and attempted in parallel) per poll. */
  batchSize: number;
  /** Used for an attempt that threw or overran its deadline: it is retried like any failure. */
  retryScheduleMs: readonly number[];
};

class AttemptDeadlineError extends Error {}

/**
 * Delivers the outbox. Every instance runs one; a delivery is leased to one of them at a time
 * (`NotificationRepo.claimDue`), attempted, and its outcome recorded under that lease. A process
 * that dies mid-attempt leaves the lease to run out, and the delivery is attempted again by
 * whichever instance polls next: deliveries are at least once, and the `webhook-id` (the event
 * id) lets a receiver drop a repeat.
 */
export function createDeliveryWorker(deps: DeliveryWorkerDeps) {
  const claimToken = randomUUID();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let isStopping = false;

  async function attemptWithDeadline(claimed: ClaimedDelivery): Promise<DeliveryOutcome> {
    let deadline: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        deps.deliver(claimed),
        new Promise<never>((_, reject) => {
          deadline = setTimeout(() => reject(new AttemptDeadlineError()), deps.attemptDeadlineMs);
        }),
      ]);
    } catch (error) {
      const isDeadline = error instanceof AttemptDeadlineError;
      if (!isDeadline) deps.log.error({ err: error, eventId: claimed.event.id, target: claimed.delivery.target }, "notification attempt failed unexpectedly");
      const result = { kind: "failed", error: isDeadline ? "timed out" : "internal error", permanent: false } as const;
      return toOutcome(result, claimed.delivery.attempts, deps.clock.now(), deps.retryScheduleMs, Math.random);
    } finally {
      clearTimeout(deadline);
    }
  }

  async function handle(claimed: ClaimedDelivery): Promise<void> {
    const { event, delivery } = claimed;
    const outcome = await attemptWithDeadline(claimed);
    const isRecorded = await deps.notifications.finish(event.id, delivery.target, claimToken, outcome);
    const fields = { eventId: event.id, type: event.type, target: delivery.target, attempt: delivery.attempts + 1 };
    if (!isRecorded) deps.log.warn(fields, "notification lease lost before the outcome was recorded; another instance will retry it");
    else if (outcome.state === "delivered") deps.log.info(fields, "notification delivered");
    else if (outcome.state === "pending") deps.log.info({ ...fields, error: outcome.error, nextAttemptAt: outcome.nextAttemptAt }, "notification attempt failed; will retry");
    else if (outcome.state === "failed") deps.log.warn({ ...fields, error: outcome.error }, "notification delivery given up");
  }

  /** Claims one batch of due deliveries and attempts them; resolves with how many it claimed. */
  async function pollOnce(): Promise<number> {
    const now = deps.clock.now();
    const claimed = await deps.notifications.claimDue({
      now: now.toISOString(),
      leaseUntil: new Date(now.getTime() + deps.leaseMs).toISOString(),
      claimToken,
      limit: deps.batchSize,
    });
    // Every attempt runs to its end before the poll resolves (a stop waits for the poll), even when
    // recording one of them fails.
    const settled = await Promise.allSettled(claimed.map(handle));
    const failure = settled.find((outcome) => outcome.status === "rejected");
    if (failure !== undefined) throw failure.reason;
    return claimed.length;
  }

  function schedule(delayMs: number): void {
    if (isStopping) return;
    timer = setTimeout(() => {
      running = pollOnce().then(
        // A full batch means more may be waiting: go again at once.
        (count) => schedule(count >= deps.batchSize ? 0 : deps.pollIntervalMs),
        (error: unknown) => {
          deps.log.warn({ err: error }, "notification poll failed; trying again");
          schedule(deps.pollIntervalMs);
        },
      );
    }, delayMs);
    // The HTTP server keeps the process alive; a pending poll must not.
    timer.unref();
  }

  return {
    start(): void {
      schedule(0);
    },
    pollOnce,
    /** Stops polling, lets the attempts in progress finish, and gives back any lease left. */
    async stop(): Promise<void> {
      isStopping = true;
      clearTimeout(timer);
      await running;
      await deps.notifications.release(claimToken).catch((error: unknown) => deps.log.warn({ err: error }, "could not release notification leases"));
    },
  };
}

export type DeliveryWorker = ReturnType<typeof createDeliveryWorker>;
