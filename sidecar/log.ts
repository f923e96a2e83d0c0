import { type Logger, pino } from "pino";

/** Field names whose values are replaced before a log line is written, wherever they appear. */
export const REDACT_PATHS = [
  "token",
  "password",
  "passphrase",
  "community",
  "auth_key",
  "priv_key",
  "authorization",
  "*.token",
  "*.password",
  "*.passphrase",
  "*.community",
  "*.auth_key",
  "*.priv_key",
  "*.authorization",
  "req.headers.authorization",
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: "**redacted**" }, base: { service: "z2m-ha" } },
    destination ?? process.stderr,
  );
}

export type { Logger };
