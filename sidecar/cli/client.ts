import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import type { PeerCertificate } from "node:tls";
import { configPath, loadConfig } from "../config/load.js";

/** Where the running sidecar is and how to authenticate, from flags, environment or its config. */
export interface Endpoint {
  url: string;
  token: string | undefined;
  /**
   * The API's certificate is pinned by its SHA-256 fingerprint ("SHA256:AB:CD:…"): a self-signed
   * certificate is trusted by what it is, not by a CA. Without a pin, normal CA verification.
   */
  fingerprint?: string;
}

export interface EndpointFlags {
  url?: string;
  token?: string;
  tokenFile?: string;
  config?: string;
  tlsFingerprint?: string;
}

/** "SHA256:ab:cd…" or bare hex with or without colons, as one canonical form. */
export function normalizeFingerprint(value: string): string {
  const hex = value
    .replace(/^SHA256:/i, "")
    .replace(/:/g, "")
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new CliError(`not a SHA-256 fingerprint: ${value}`, 2);
  return `SHA256:${hex.match(/../g)?.join(":")}`;
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
  let fingerprint = flags.tlsFingerprint || process.env.Z2MHA_TLS_FINGERPRINT || undefined;
  if (!token && tokenFile) token = readToken(tokenFile);
  const cfgPath = configPath(flags.config);
  if ((!url || !token || !fingerprint) && cfgPath) {
    const config = loadConfig(cfgPath);
    const host =
      config.server.host === "0.0.0.0" || config.server.host === "::" ? "127.0.0.1" : config.server.host;
    const scheme = config.server.tls ? "https" : "http";
    url ??= `${scheme}://${host.includes(":") ? `[${host}]` : host}:${config.server.port}`;
    if (!token) {
      token = config.server.token
        ? config.server.token.reveal()
        : readToken(config.server.token_file ?? join(config.state_dir, "token"));
    }
    // On the controller itself the certificate is at hand: pin it.
    const cert =
      config.server.tls === "self_signed"
        ? join(config.state_dir, "tls", "cert.pem")
        : config.server.tls?.cert;
    if (!fingerprint && cert && existsSync(cert))
      fingerprint = `SHA256:${new X509Certificate(readFileSync(cert)).fingerprint256}`;
  }
  return {
    url: (url ?? "http://127.0.0.1:8485").replace(/\/+$/, ""),
    token,
    ...(fingerprint ? { fingerprint: normalizeFingerprint(fingerprint) } : {}),
  };
}

export interface ApiErrorBody {
  error?: { code?: string; message?: string; details?: Record<string, unknown> };
}

export class ApiClient {
  constructor(private readonly endpoint: Endpoint) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: { status: number; text: string };
    try {
      response = await this.#send(method, path, body);
    } catch (error) {
      if (error instanceof CliError) throw error;
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new CliError(`cannot reach the sidecar at ${this.endpoint.url} (${code})`, 3);
    }
    const text = response.text;
    const ok = response.status >= 200 && response.status < 300;
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!ok) {
      const err = (parsed as ApiErrorBody | undefined)?.error;
      const hint = response.status === 401 ? " (check --token, Z2MHA_TOKEN or the token file)" : "";
      throw new CliError(`${response.status} ${err?.code ?? "error"}: ${err?.message ?? text}${hint}`, 1);
    }
    return parsed as T;
  }

  /** One HTTP(S) exchange; with a pinned fingerprint the certificate must be exactly that one. */
  #send(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const url = new URL(`${this.endpoint.url}${path}`);
    const pin = this.endpoint.fingerprint;
    const payload = body !== undefined ? JSON.stringify(body) : undefined;
    const headers: Record<string, string> = {
      "x-z2mha-client": "cli",
      ...(this.endpoint.token ? { authorization: `Bearer ${this.endpoint.token}` } : {}),
      ...(payload !== undefined
        ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) }
        : {}),
    };
    return new Promise((resolve, reject) => {
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      };
      const common = { method, headers, timeout: 30_000 };
      const req =
        url.protocol === "https:"
          ? httpsRequest(
              url,
              {
                ...common,
                ...(pin
                  ? {
                      // The pin replaces CA and host-name checks: it names the one certificate.
                      rejectUnauthorized: false,
                      checkServerIdentity: () => undefined,
                    }
                  : {}),
              },
              onResponse,
            )
          : httpRequest(url, common, onResponse);
      if (pin && url.protocol === "https:") {
        req.on("socket", (socket) => {
          socket.once("secureConnect", () => {
            const cert = (
              socket as unknown as { getPeerCertificate(): PeerCertificate }
            ).getPeerCertificate();
            const seen = cert?.fingerprint256 ? `SHA256:${cert.fingerprint256}` : "none";
            if (seen !== pin) {
              req.destroy(
                new CliError(
                  `the sidecar at ${this.endpoint.url} presented certificate ${seen}, not the pinned ${pin}: refusing to send the token`,
                  3,
                ),
              );
            }
          });
        });
      }
      req.on("timeout", () => req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })));
      req.on("error", reject);
      req.end(payload);
    });
  }
}
