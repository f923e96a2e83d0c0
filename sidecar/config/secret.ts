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

/**
 * Whether a dotted configuration.yaml path names a secret (mqtt.password, advanced.network_key,
 * frontend.auth_token, ...): such override values are never shown by the API or diagnostics.
 */
export function isSecretPath(path: string): boolean {
  return path.split(".").some((part) => /pass(word|wd)?|secret|token|key|credential/i.test(part));
}

/** The overrides with secret values replaced by the redaction placeholder. */
export function redactOverrides<T>(overrides: Record<string, T>): Record<string, T | string> {
  return Object.fromEntries(
    Object.entries(overrides).map(([path, value]) => [path, isSecretPath(path) ? REDACTED : value]),
  );
}
