import { inspect } from "node:util";

const REDACTED = "**redacted**";

/**
 * A value that must never reach a log, an API response or diagnostics. Serialising or printing it
 * yields a placeholder; only `reveal()` gives the value, at the one place that needs it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
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
