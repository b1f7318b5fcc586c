import { inspect } from "node:util";

const REDACTED = "[redacted]";

/**
 * Wraps a secret so that it cannot reach a log line or a response by accident: string
 * conversion, JSON and `util.inspect` all print `[redacted]`. Only `reveal()` gives the value,
 * and only code that hands the secret to the provider calls it.
 */
export class Redacted<T = string> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  reveal(): T {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export function redacted<T>(value: T): Redacted<T> {
  return new Redacted(value);
}
