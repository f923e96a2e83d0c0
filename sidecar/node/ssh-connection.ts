import { readFile } from "node:fs/promises";
import type { ConnectConfig, SFTPWrapper, Client as Ssh2Client } from "ssh2";
import ssh2 from "ssh2";
import type { NodeConfig } from "../config/schema.js";
import { keyTypeOf, normalizeFingerprint, openSshFingerprint } from "./fingerprint.js";
import { asSsh2Error, SshError, type SshErrorTarget } from "./ssh-errors.js";

/** The subset of pino's Logger the transport uses; a pino logger fits as is. */
export interface SshLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export type SshNodeConfig = NodeConfig["ssh"];

export type ConnectionState = "connected" | "connecting" | "disconnected";

export interface ConnectionStateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** Why the connection went down or could not be made; absent for a close() we asked for. */
  error?: SshError;
}

export interface SshConnectionOptions {
  nodeId: string;
  ssh: SshNodeConfig;
  logger: SshLogger;
  /** Connection attempts within one call before giving up (only `unreachable` is retried). */
  connectAttempts: number;
  /** Delay before the second attempt; doubles for each further one. */
  retryDelayMs: number;
  /** Unanswered keepalives before the connection is declared dead. */
  keepaliveCountMax: number;
}

/**
 * One SSH connection to one node, opened on first use and reused. If it drops, the next caller
 * reconnects; callers arriving while a connect is under way share it. The server's host key must
 * match the pinned fingerprint or the connection is refused before authentication.
 */
export class SshConnection {
  readonly where: SshErrorTarget;
  readonly #options: SshConnectionOptions;
  readonly #listeners = new Set<(change: ConnectionStateChange) => void>();
  #state: ConnectionState = "disconnected";
  #client: Ssh2Client | undefined;
  #connecting: Promise<Ssh2Client> | undefined;
  #sftp: Promise<SFTPWrapper> | undefined;
  #closed = false;

  constructor(options: SshConnectionOptions) {
    this.#options = options;
    this.where = { node: options.nodeId, target: `${options.ssh.host}:${options.ssh.port}` };
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  onStateChange(listener: (change: ConnectionStateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The live client, connecting (with retries) if there is none. */
  async client(): Promise<Ssh2Client> {
    if (this.#closed) throw this.closedError();
    if (this.#client) return this.#client;
    if (!this.#connecting) {
      this.#connecting = this.#connectWithRetries().finally(() => {
        this.#connecting = undefined;
      });
    }
    return this.#connecting;
  }

  /** Drops a client that turned out to be dead before its close event arrived. */
  discard(client: Ssh2Client, reason: string): void {
    if (this.#client !== client) return;
    this.#forget(client, new SshError("closed", this.where, reason));
    client.destroy();
  }

  /** The connection's SFTP session, opened on first use and reopened after a reconnect. */
  async sftp(): Promise<SFTPWrapper> {
    const client = await this.client();
    if (!this.#sftp) {
      const opening = openSftp(client, this.where, this.#options.ssh.connect_timeout);
      this.#sftp = opening;
      opening.then(
        (session) => {
          session.on("error", (error: Error) => {
            this.#options.logger.warn(
              { node: this.where.node, err: error.message },
              "ssh: sftp session error",
            );
          });
          session.once("close", () => {
            if (this.#sftp === opening) this.#sftp = undefined;
          });
        },
        () => {
          if (this.#sftp === opening) this.#sftp = undefined;
        },
      );
    }
    return this.#sftp;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pending = this.#connecting;
    if (pending) await pending.catch(() => undefined);
    const client = this.#client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        client.destroy();
        resolve();
      }, 2_000);
      client.once("close", () => {
        clearTimeout(force);
        resolve();
      });
      client.end();
    });
  }

  closedError(): SshError {
    return new SshError("closed", this.where, "the SSH transport was closed");
  }

  async #connectWithRetries(): Promise<Ssh2Client> {
    const { connectAttempts, retryDelayMs, logger } = this.#options;
    this.#setState("connecting");
    let lastError: SshError | undefined;
    for (let attempt = 1; attempt <= connectAttempts; attempt++) {
      if (this.#closed) break;
      try {
        const client = await this.#connectOnce();
        if (this.#closed) {
          client.end();
          break;
        }
        this.#adopt(client);
        return client;
      } catch (error) {
        lastError = error as SshError;
        const retry = lastError.kind === "unreachable" && attempt < connectAttempts && !this.#closed;
        logger.warn(
          { node: this.where.node, target: this.where.target, attempt, kind: lastError.kind, retry },
          `ssh: connect failed: ${lastError.message}`,
        );
        if (!retry) break;
        await sleep(retryDelayMs * 2 ** (attempt - 1));
      }
    }
    const error = this.#closed ? this.closedError() : (lastError ?? this.closedError());
    this.#setState("disconnected", error);
    throw error;
  }

  async #connectOnce(): Promise<Ssh2Client> {
    const { ssh } = this.#options;
    let privateKey: Buffer;
    try {
      privateKey = await readFile(ssh.private_key);
    } catch (error) {
      throw new SshError(
        "auth-failed",
        this.where,
        `cannot read private key file ${ssh.private_key}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    const expected = normalizeFingerprint(ssh.host_key);
    let presented: { fingerprint: string; type: string } | undefined;

    return new Promise<Ssh2Client>((resolve, reject) => {
      const client = new ssh2.Client();
      let settled = false;
      const onError = (error: Error) => fail(this.#classify(error, presented));
      const onClose = () =>
        fail(new SshError("unreachable", this.where, "the connection closed during the SSH handshake"));
      const onReady = () => {
        if (settled) return;
        settled = true;
        detach();
        resolve(client);
      };
      const detach = () => {
        client.off("error", onError);
        client.off("close", onClose);
        client.off("ready", onReady);
      };
      const fail = (error: SshError) => {
        if (settled) return;
        settled = true;
        detach();
        // A late error from the abandoned client must not become an unhandled 'error' event.
        client.on("error", () => undefined);
        client.destroy();
        reject(error);
      };
      client.on("error", onError);
      client.on("close", onClose);
      client.on("ready", onReady);
      const config: ConnectConfig = {
        host: ssh.host,
        port: ssh.port,
        username: ssh.user,
        privateKey,
        passphrase: ssh.passphrase?.reveal(),
        readyTimeout: ssh.connect_timeout,
        keepaliveInterval: ssh.keepalive_interval,
        keepaliveCountMax: this.#options.keepaliveCountMax,
        hostVerifier: (key: Buffer): boolean => {
          const fingerprint = openSshFingerprint(key);
          if (fingerprint === expected) return true;
          presented = { fingerprint, type: keyTypeOf(key) ?? "unknown-type" };
          return false;
        },
      };
      try {
        client.connect(config);
      } catch (error) {
        // ssh2 parses the private key synchronously; its messages never contain the key.
        fail(
          new SshError(
            "auth-failed",
            this.where,
            `cannot use private key ${ssh.private_key}: ${asSsh2Error(error).message}` +
              (ssh.passphrase ? "" : " (an encrypted key needs ssh.passphrase)"),
          ),
        );
      }
    });
  }

  #classify(error: Error, presented: { fingerprint: string; type: string } | undefined): SshError {
    const { ssh } = this.#options;
    if (presented) {
      return new SshError(
        "host-key-mismatch",
        this.where,
        `host key mismatch: the server presented ${presented.type} key ${presented.fingerprint}, ` +
          `but ssh.host_key of node "${this.where.node}" pins ${normalizeFingerprint(ssh.host_key)}. ` +
          "Connection refused before authentication. If the node was reinstalled or its key was " +
          `replaced on purpose, verify the new key on the node itself (ssh-keygen -lf ` +
          `/etc/ssh/ssh_host_ed25519_key.pub) and update ssh.host_key of node "${this.where.node}" ` +
          "in the config; otherwise something may be intercepting the connection.",
        { cause: error },
      );
    }
    const { level, code } = asSsh2Error(error);
    if (level === "client-authentication") {
      return new SshError(
        "auth-failed",
        this.where,
        `the server refused key ${ssh.private_key} for user ${ssh.user}; ` +
          "add its public key to that user's ~/.ssh/authorized_keys on the node",
        { cause: error },
      );
    }
    if (level === "client-timeout") {
      return new SshError(
        "unreachable",
        this.where,
        `no SSH session within ${ssh.connect_timeout}ms (host down, packets dropped, or not an SSH server)`,
        { cause: error },
      );
    }
    const detail = typeof code === "string" ? `${code} (${error.message})` : error.message;
    return new SshError("unreachable", this.where, `cannot connect: ${detail}`, { cause: error });
  }

  #adopt(client: Ssh2Client): void {
    const { logger } = this.#options;
    this.#client = client;
    this.#sftp = undefined;
    // Every exec and SFTP call listens for the connection's end; there can be many at once.
    client.setMaxListeners(0);
    let lastError: Error | undefined;
    client.on("error", (error: Error) => {
      lastError = error;
      logger.warn(
        { node: this.where.node, target: this.where.target },
        `ssh: connection error: ${error.message}`,
      );
    });
    client.once("close", () => {
      const reason = lastError ? `connection lost: ${lastError.message}` : "connection closed";
      this.#forget(client, this.#closed ? undefined : new SshError("closed", this.where, reason));
    });
    logger.info({ node: this.where.node, target: this.where.target }, "ssh: connected");
    this.#setState("connected");
  }

  #forget(client: Ssh2Client, error: SshError | undefined): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#sftp = undefined;
    if (error) {
      this.#options.logger.warn(
        { node: this.where.node, target: this.where.target },
        `ssh: ${error.message}`,
      );
    }
    // A reconnect may already be under way; it owns the state from here.
    if (!this.#connecting) this.#setState("disconnected", error);
  }

  #setState(state: ConnectionState, error?: SshError): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    const change: ConnectionStateChange = error ? { state, previous, error } : { state, previous };
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (listenerError) {
        this.#options.logger.error(
          { node: this.where.node, err: (listenerError as Error).message },
          "ssh: state listener threw",
        );
      }
    }
  }
}

function openSftp(client: Ssh2Client, where: SshErrorTarget, timeoutMs: number): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new SshError("timeout", where, `the SFTP subsystem did not start within ${timeoutMs}ms`));
    }, timeoutMs);
    try {
      client.sftp((error, session) => {
        clearTimeout(timer);
        if (done) {
          session?.end();
          return;
        }
        done = true;
        if (error) reject(new SshError("sftp", where, `cannot start the SFTP subsystem: ${error.message}`));
        else resolve(session);
      });
    } catch (error) {
      clearTimeout(timer);
      done = true;
      reject(new SshError("closed", where, `cannot start the SFTP subsystem: ${(error as Error).message}`));
    }
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
