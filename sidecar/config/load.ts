import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { type Config, configSchema } from "./schema.js";

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid config ${file}:\n${problems.map((p) => `  ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** `nodes[1].ssh.host_key` from ["nodes", 1, "ssh", "host_key"]. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "(root)" : out;
}

function describe(issue: z.core.$ZodIssue): string[] {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case "invalid_type":
      if ((issue as { input?: unknown }).input === undefined) return [`${path}: required`];
      return [`${path}: expected ${issue.expected}, got ${typeOf((issue as { input?: unknown }).input)}`];
    case "unrecognized_keys":
      return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key`);
    case "invalid_union": {
      // A union failing on the same path in every branch: report the branch that got furthest.
      const nested = issue.errors.flat();
      const meaningful = nested.filter((i) => i.code !== "invalid_type");
      if (meaningful.length > 0)
        return meaningful.flatMap((i) => describe({ ...i, path: [...issue.path, ...i.path] }));
      return [`${path}: ${issue.message}`];
    }
    default:
      return [`${path}: ${issue.message}`];
  }
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "list";
  return typeof value;
}

/** Turns a zod error into one line per problem, each starting with the config path. */
export function describeIssues(error: z.ZodError): string[] {
  return [...new Set(error.issues.flatMap(describe))];
}

export function parseConfig(text: string, file = "<config>"): Config {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map(
        (e) => `YAML ${e.code} at line ${e.linePos?.[0]?.line ?? "?"}: ${e.message.split("\n")[0]}`,
      ),
    );
  }
  const raw = doc.toJS() ?? {};
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new ConfigError(file, describeIssues(result.error));
  return result.data;
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(file, [`cannot read: ${(error as Error).message}`]);
  }
  return parseConfig(text, file);
}

/** --config FILE wins over $Z2MHA_CONFIG. */
export function configPath(flag: string | undefined): string | undefined {
  return flag || process.env.Z2MHA_CONFIG || undefined;
}
