import { readFileSync } from "node:fs";
import { join } from "node:path";
import { configPath, loadConfig } from "../config/load.js";

/** Where the running sidecar is and how to authenticate, from flags, environment or its config. */
export interface Endpoint {
  url: string;
  token: string | undefined;
}

export interface EndpointFlags {
  url?: string;
  token?: string;
  tokenFile?: string;
  config?: string;
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

function readToken(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new CliError(`cannot read token file ${path}: ${(error as Error).message}`, 2);
  }
}

export function resolveEndpoint(flags: EndpointFlags): Endpoint {
  // An empty flag or variable counts as unset.
  let url = flags.url || process.env.Z2MHA_URL || undefined;
  let token = flags.token || process.env.Z2MHA_TOKEN || undefined;
  const tokenFile = flags.tokenFile || process.env.Z2MHA_TOKEN_FILE || undefined;
  if (!token && tokenFile) token = readToken(tokenFile);
  const cfgPath = configPath(flags.config);
  if ((!url || !token) && cfgPath) {
    const config = loadConfig(cfgPath);
    const host =
      config.server.host === "0.0.0.0" || config.server.host === "::" ? "127.0.0.1" : config.server.host;
    url ??= `http://${host.includes(":") ? `[${host}]` : host}:${config.server.port}`;
    if (!token) {
      token = config.server.token
        ? config.server.token.reveal()
        : readToken(config.server.token_file ?? join(config.state_dir, "token"));
    }
  }
  return { url: (url ?? "http://127.0.0.1:8485").replace(/\/+$/, ""), token };
}

export interface ApiErrorBody {
  error?: { code?: string; message?: string; details?: Record<string, unknown> };
}

export class ApiClient {
  constructor(private readonly endpoint: Endpoint) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.endpoint.url}${path}`, {
        method,
        headers: {
          ...(this.endpoint.token ? { authorization: `Bearer ${this.endpoint.token}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          "x-z2mha-client": "cli",
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new CliError(`cannot reach the sidecar at ${this.endpoint.url} (${cause})`, 3);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!response.ok) {
      const err = (parsed as ApiErrorBody | undefined)?.error;
      const hint = response.status === 401 ? " (check --token, Z2MHA_TOKEN or the token file)" : "";
      throw new CliError(`${response.status} ${err?.code ?? "error"}: ${err?.message ?? text}${hint}`, 1);
    }
    return parsed as T;
  }
}
