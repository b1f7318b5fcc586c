import { type Command, Redis } from "ioredis";
import pg from "pg";
import { vi } from "vitest";

/** One command Keyport sent (`script` for EVAL and EVALSHA), and how many answers to the commands watched before it had come back. */
export type SentCommand = { name: string; answersBefore: number };

/**
 * Watches (and can break) what every Keyport instance in this process sends to Redis on its command connection
 * (`keyport`) and to PostgreSQL, between `start()` and `stop()`. Commands sent before any answer
 * came back travel together: the number of round trips is the number of distinct
 * `answersBefore` values (a command sent after awaiting another's answer starts a new one).
 */
export function watchRoundTrips(connectionName = "keyport") {
  let isWatching = false;
  let isFailing = false;
  let answers = 0;
  const redisCommands: SentCommand[] = [];
  const sqlQueries: string[] = [];

  const sendCommand = Redis.prototype.sendCommand;
  const redisSpy = vi.spyOn(Redis.prototype, "sendCommand").mockImplementation(function (this: Redis, command: Command, stream?: unknown) {
    if (isFailing && this.options.connectionName === connectionName) {
      // What ioredis answers on a connection that has just closed; the subscription stays up.
      command.reject(new Error("Connection is closed."));
      return command.promise;
    }
    const reply = sendCommand.call(this, command, stream as Parameters<typeof sendCommand>[1]);
    if (isWatching && this.options.connectionName === connectionName) {
      // A script goes as EVAL the first time on a connection, EVALSHA after: the same one trip.
      const name = command.name === "eval" || command.name === "evalsha" ? "script" : command.name;
      redisCommands.push({ name, answersBefore: answers });
      // Registered before the sender's own await, so it counts the answer before the sender sees it.
      const answered = () => {
        if (isWatching) answers += 1;
      };
      command.promise.then(answered, answered);
    }
    return reply;
  });
  const query = pg.Client.prototype.query;
  const sqlSpy = vi.spyOn(pg.Client.prototype, "query").mockImplementation(function (this: pg.Client, ...args: unknown[]) {
    if (isWatching) sqlQueries.push(typeof args[0] === "string" ? args[0] : String((args[0] as { text?: unknown } | undefined)?.text));
    return (query as (...queryArgs: unknown[]) => unknown).apply(this, args);
  } as typeof query);

  return {
    start(): void {
      redisCommands.length = 0;
      sqlQueries.length = 0;
      answers = 0;
      isWatching = true;
    },
    /** What was sent since `start()`. */
    stop(): { redisCommands: SentCommand[]; roundTrips: number; sqlQueries: string[] } {
      isWatching = false;
      return { redisCommands: [...redisCommands], roundTrips: new Set(redisCommands.map((command) => command.answersBefore)).size, sqlQueries: [...sqlQueries] };
    },
    /** While on, every command on the watched connection fails at once, as on a connection just lost. */
    failCommands(on: boolean): void {
      isFailing = on;
    },
    restore(): void {
      redisSpy.mockRestore();
      sqlSpy.mockRestore();
    },
  };
}

/**
 * Holds back the key-change announcements (`…key-changes` messages) every instance in this
 * process would receive, as if they were still on their way, until `release()` delivers them.
 */
export function holdKeyChangeMessages() {
  const held: Array<() => void> = [];
  let isHolding = true;
  const emit = Redis.prototype.emit;
  const spy = vi.spyOn(Redis.prototype, "emit").mockImplementation(function (this: Redis, event: string | symbol, ...args: unknown[]) {
    if (isHolding && event === "message" && typeof args[0] === "string" && args[0].endsWith("key-changes")) {
      held.push(() => emit.call(this, event, ...args));
      return true;
    }
    return emit.call(this, event, ...args);
  });
  return {
    /** Messages held so far. */
    count: () => held.length,
    release(): void {
      isHolding = false;
      spy.mockRestore();
      for (const deliver of held.splice(0)) deliver();
    },
  };
}
