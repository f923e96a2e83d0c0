import type { NodeConfig } from "../config/schema.js";
import type { DiskSpace } from "./disk-space.js";
import { buildRemoteCommand } from "./remote-command.js";
import { Semaphore } from "./semaphore.js";
import type { DownloadResult, RemoteDirEntry, RemoteStats, TransferResult, WriteOptions } from "./sftp.js";
import { SftpFiles } from "./sftp.js";
import {
  type ConnectionState,
  type ConnectionStateChange,
  SshConnection,
  type SshLogger,
  type SshNodeConfig,
} from "./ssh-connection.js";
import { SshError } from "./ssh-errors.js";
import {
  ChannelRefusedError,
  type ExecOptions,
  type ExecResult,
  execOnChannel,
  StaleClientError,
} from "./ssh-exec.js";

export type { DiskSpace } from "./disk-space.js";
export { ShellQuoteError } from "./quote.js";
export type {
  DownloadResult,
  RemoteDirEntry,
  RemoteFileType,
  RemoteStats,
  TransferResult,
  WriteOptions,
} from "./sftp.js";
export type { ConnectionState, ConnectionStateChange, SshLogger, SshNodeConfig } from "./ssh-connection.js";
export { isNotFound, isSshError, SFTP_STATUS, SshError, type SshErrorKind } from "./ssh-errors.js";
export type { ExecOptions, ExecResult } from "./ssh-exec.js";

export interface SshTransportOptions {
  nodeId: string;
  ssh: SshNodeConfig;
  logger: SshLogger;
  /** Connection attempts within one call when the node is unreachable (default 3). */
  connectAttempts?: number;
  /** Pause before the second attempt, doubling after (default 500 ms). */
  retryDelayMs?: number;
  /** Unanswered keepalives (every ssh.keepalive_interval) before the connection counts as dead (default 3). */
  keepaliveCountMax?: number;
  /** Bound on each SFTP request (default 30 s). */
  sftpTimeoutMs?: number;
  /** exec timeout when the call gives none (default 60 s). */
  execTimeoutMs?: number;
  /** Per-stream capture bound when the call gives none (default 1 MiB). */
  maxOutputBytes?: number;
  /**
   * Commands running at once on the connection; more wait their turn. OpenSSH allows 10 sessions
   * per connection (MaxSessions) and the SFTP session takes one (default 8).
   */
  maxConcurrentExecs?: number;
}

const MiB = 1024 * 1024;

/**
 * Everything the sidecar does to a node goes through here: commands (argument vectors, quoted for
 * the node's POSIX login shell, with a timeout and bounded output) and files (SFTP, atomic and
 * SHA-256 verified) over one pinned, kept-alive, self-reconnecting SSH connection.
 */
export class SshTransport {
  readonly nodeId: string;
  /** host:port, for messages. */
  readonly target: string;
  readonly #connection: SshConnection;
  readonly #files: SftpFiles;
  readonly #logger: SshLogger;
  readonly #execTimeoutMs: number;
  readonly #maxOutputBytes: number;
  readonly #openTimeoutMs: number;
  readonly #slots: Semaphore;

  constructor(options: SshTransportOptions) {
    this.nodeId = options.nodeId;
    this.target = `${options.ssh.host}:${options.ssh.port}`;
    this.#logger = options.logger;
    this.#execTimeoutMs = positive("execTimeoutMs", options.execTimeoutMs ?? 60_000);
    this.#maxOutputBytes = options.maxOutputBytes ?? MiB;
    this.#openTimeoutMs = options.ssh.connect_timeout;
    this.#slots = new Semaphore(options.maxConcurrentExecs ?? 8);
    this.#connection = new SshConnection({
      nodeId: options.nodeId,
      ssh: options.ssh,
      logger: options.logger,
      connectAttempts: positive("connectAttempts", options.connectAttempts ?? 3),
      retryDelayMs: options.retryDelayMs ?? 500,
      keepaliveCountMax: positive("keepaliveCountMax", options.keepaliveCountMax ?? 3),
    });
    this.#files = new SftpFiles({
      where: this.#connection.where,
      logger: options.logger,
      timeoutMs: positive("sftpTimeoutMs", options.sftpTimeoutMs ?? 30_000),
      session: () => this.#connection.sftp(),
      exec: (argv, execOptions) => this.exec(argv, execOptions),
    });
  }

  static forNode(
    node: Pick<NodeConfig, "id" | "ssh">,
    logger: SshLogger,
    tuning: Omit<SshTransportOptions, "nodeId" | "ssh" | "logger"> = {},
  ): SshTransport {
    return new SshTransport({ ...tuning, nodeId: node.id, ssh: node.ssh, logger });
  }

  get state(): ConnectionState {
    return this.#connection.state;
  }

  /** Called on every change of `state`; returns the unsubscribe function. */
  onStateChange(listener: (change: ConnectionStateChange) => void): () => void {
    return this.#connection.onStateChange(listener);
  }

  /** Connects now (if not connected) instead of on first use; throws the SshError of the last attempt. */
  async connect(): Promise<void> {
    await this.#connection.client();
  }

  /**
   * Runs `argv` on the node. The command line is built only by quoting `argv` (see quote.ts); a
   * non-zero exit is a result, not an error. Rejects with SshError when the node cannot be reached
   * or the connection drops while the command runs (its outcome is then unknown), and with
   * ShellQuoteError for an argument no shell can carry (NUL byte).
   */
  async exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const command = buildRemoteCommand(argv, options.cwd === undefined ? {} : { cwd: options.cwd });
    const program = argv[0] as string;
    const timeoutMs = positive("timeoutMs", options.timeoutMs ?? this.#execTimeoutMs);
    const maxOutputBytes = options.maxOutputBytes ?? this.#maxOutputBytes;
    options.signal?.throwIfAborted();
    const release = await this.#slots.acquire();
    try {
      for (let attempt = 1; ; attempt++) {
        options.signal?.throwIfAborted();
        const client = await this.#connection.client();
        try {
          const result = await execOnChannel(client, {
            where: this.#connection.where,
            command,
            program,
            timeoutMs,
            maxOutputBytes,
            input: options.input,
            openTimeoutMs: this.#openTimeoutMs,
            termGraceMs: 2_000,
            killGraceMs: 5_000,
            signal: options.signal,
          });
          const fields = {
            node: this.nodeId,
            argv,
            code: result.code,
            signal: result.signal,
            durationMs: result.durationMs,
          };
          if (result.timedOut)
            this.#logger.warn(fields, `ssh: ${program} timed out after ${timeoutMs}ms, killed`);
          else this.#logger.debug(fields, `ssh: ran ${program}`);
          return result;
        } catch (error) {
          if (error instanceof StaleClientError) {
            // Nothing reached the node: the socket was gone before the request. Reconnect once.
            this.#connection.discard(client, `connection was already gone: ${error.message}`);
            if (attempt < 2) continue;
          } else if (error instanceof ChannelRefusedError) {
            if (attempt < 5) {
              await sleep(25 * 2 ** attempt);
              continue;
            }
          } else {
            throw error;
          }
          throw new SshError("closed", this.#connection.where, `cannot run ${program}: ${error.message}`);
        }
      }
    } finally {
      release();
    }
  }

  stat(path: string): Promise<RemoteStats> {
    return this.#files.stat(path);
  }

  lstat(path: string): Promise<RemoteStats> {
    return this.#files.lstat(path);
  }

  exists(path: string): Promise<boolean> {
    return this.#files.exists(path);
  }

  readdir(path: string): Promise<RemoteDirEntry[]> {
    return this.#files.readdir(path);
  }

  mkdirp(path: string, options?: { mode?: number }): Promise<void> {
    return this.#files.mkdirp(path, options);
  }

  rename(from: string, to: string): Promise<void> {
    return this.#files.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return this.#files.unlink(path);
  }

  rmdir(path: string): Promise<void> {
    return this.#files.rmdir(path);
  }

  rmrf(path: string): Promise<void> {
    return this.#files.rmrf(path);
  }

  statvfs(path: string, options?: { via?: "auto" | "df" }): Promise<DiskSpace> {
    return this.#files.statvfs(path, options);
  }

  readFile(path: string, options?: { maxBytes?: number }): Promise<Buffer> {
    return this.#files.readFile(path, options);
  }

  writeFileAtomic(path: string, data: string | Buffer, options?: WriteOptions): Promise<TransferResult> {
    return this.#files.writeFileAtomic(path, data, options);
  }

  put(localPath: string, remotePath: string, options?: WriteOptions): Promise<TransferResult> {
    return this.#files.put(localPath, remotePath, options);
  }

  get(remotePath: string, localPath: string): Promise<DownloadResult> {
    return this.#files.get(remotePath, localPath);
  }

  /** Ends the connection; every later call rejects with SshError kind "closed". */
  close(): Promise<void> {
    return this.#connection.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  return value;
}
