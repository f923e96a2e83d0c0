import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, open, rename as renameLocal, rm } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import type { SFTPWrapper, Stats } from "ssh2";
import { type DiskSpace, diskSpaceFromStatvfs, parseDfPortable } from "./disk-space.js";
import { assertRemotePath, assertRemovablePath, tempSiblingOf } from "./remote-path.js";
import type { SshLogger } from "./ssh-connection.js";
import { asSsh2Error, isNotFound, SFTP_STATUS, SshError, type SshErrorTarget } from "./ssh-errors.js";
import type { ExecOptions, ExecResult } from "./ssh-exec.js";

export type RemoteFileType = "file" | "directory" | "symlink" | "other";

export interface RemoteStats {
  type: RemoteFileType;
  size: number;
  /** Permission bits only (e.g. 0o644); the file type is in `type`. */
  mode: number;
  uid: number;
  gid: number;
  /** SFTP v3 carries whole seconds; these are those seconds in milliseconds. */
  atimeMs: number;
  mtimeMs: number;
}

export interface RemoteDirEntry {
  name: string;
  stats: RemoteStats;
}

export interface TransferResult {
  size: number;
  /** Lower-case hex. */
  sha256: string;
}

export interface DownloadResult extends TransferResult {
  /** The remote file's modification time. */
  mtimeMs: number;
}

export interface WriteOptions {
  /** Permission bits of the new file; default: those of the file it replaces, else 0o644. */
  mode?: number;
}

export interface SftpFilesDeps {
  where: SshErrorTarget;
  logger: SshLogger;
  /** Bound on every single SFTP request; a transfer is many requests. */
  timeoutMs: number;
  session(): Promise<SFTPWrapper>;
  exec(argv: string[], options?: ExecOptions): Promise<ExecResult>;
}

type Callback<T> = (error: Error | null | undefined, value?: T) => void;

const READ_CHUNK = 256 * 1024;
const WRITE_CHUNK = 256 * 1024;
const DEFAULT_READ_LIMIT = 16 * 1024 * 1024;

/**
 * File operations on a node over the connection's SFTP session. Writes never expose a partial
 * file: data goes to a temp sibling, is read back and compared by SHA-256, and only then renamed
 * over the target; any failure removes the temp file and leaves the target as it was.
 */
export class SftpFiles {
  readonly #deps: SftpFilesDeps;

  constructor(deps: SftpFilesDeps) {
    this.#deps = deps;
  }

  async stat(path: string): Promise<RemoteStats> {
    assertRemotePath(path);
    return toRemoteStats(await this.#call<Stats>("stat", path, (s, cb) => s.stat(path, cb)));
  }

  /** Like stat, but a symlink is described itself rather than followed. */
  async lstat(path: string): Promise<RemoteStats> {
    assertRemotePath(path);
    return toRemoteStats(await this.#call<Stats>("lstat", path, (s, cb) => s.lstat(path, cb)));
  }

  async exists(path: string): Promise<boolean> {
    try {
      await this.lstat(path);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** Entries other than "." and "..", sorted by name, with their lstat-like attributes. */
  async readdir(path: string): Promise<RemoteDirEntry[]> {
    assertRemotePath(path);
    const list = await this.#call<Array<{ filename: string; attrs: Stats }>>("readdir", path, (s, cb) =>
      s.readdir(path, cb),
    );
    return list
      .filter((entry) => entry.filename !== "." && entry.filename !== "..")
      .map((entry) => ({ name: entry.filename, stats: toRemoteStats(entry.attrs) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async mkdirp(path: string, options: { mode?: number } = {}): Promise<void> {
    assertRemotePath(path);
    const parts = path.split("/").filter(Boolean);
    let current = "";
    for (const part of parts) {
      current += `/${part}`;
      const here = current;
      const existing = await this.stat(here).catch((error) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      if (existing) {
        if (existing.type !== "directory") {
          throw new SshError(
            "sftp",
            this.#deps.where,
            `mkdir ${path}: ${here} exists and is not a directory`,
            {
              path: here,
            },
          );
        }
        continue;
      }
      const attrs = options.mode === undefined ? {} : { mode: options.mode };
      await this.#call<void>("mkdir", here, (s, cb) => s.mkdir(here, attrs, cb)).catch(async (error) => {
        // Someone else may have created it in the meantime; that is just as good.
        const now = await this.stat(here).catch(() => undefined);
        if (now?.type !== "directory") throw error;
      });
    }
  }

  /** Renames, replacing an existing target atomically when the server has posix-rename@openssh.com. */
  async rename(from: string, to: string): Promise<void> {
    assertRemotePath(from);
    assertRemotePath(to);
    try {
      await this.#call<void>("rename", from, (s, cb) => s.ext_openssh_rename(from, to, cb));
    } catch (error) {
      if (!(error instanceof SshError && error.sftpStatus === SFTP_STATUS.OP_UNSUPPORTED)) throw error;
      // Plain SFTP rename refuses to replace an existing file; mv(1) uses rename(2), which does.
      const moved = await this.#deps.exec(["mv", "-f", "--", from, to], { timeoutMs: this.#deps.timeoutMs });
      if (moved.code !== 0) {
        throw new SshError("sftp", this.#deps.where, `rename ${from} -> ${to}: ${moved.stderr.trim()}`, {
          path: from,
        });
      }
    }
  }

  async unlink(path: string): Promise<void> {
    assertRemotePath(path);
    await this.#call<void>("unlink", path, (s, cb) => s.unlink(path, cb));
  }

  async rmdir(path: string): Promise<void> {
    assertRemotePath(path);
    await this.#call<void>("rmdir", path, (s, cb) => s.rmdir(path, cb));
  }

  /**
   * Deletes a file or a directory tree; symlinks are removed, never followed. A missing path is not
   * an error. Refuses "/", relative and non-normalised paths and anything less than two levels deep.
   */
  async rmrf(path: string): Promise<void> {
    assertRemovablePath(path);
    const target = path.replace(/\/+$/, "");
    let stats: RemoteStats;
    try {
      stats = await this.lstat(target);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    await this.#remove(target, stats);
  }

  async #remove(path: string, stats: RemoteStats): Promise<void> {
    if (stats.type !== "directory") {
      await this.unlink(path).catch((error) => {
        if (!isNotFound(error)) throw error;
      });
      return;
    }
    for (const entry of await this.readdir(path)) {
      await this.#remove(posix.join(path, entry.name), entry.stats);
    }
    await this.rmdir(path).catch((error) => {
      if (!isNotFound(error)) throw error;
    });
  }

  /** Space on the file system holding `path`. */
  async statvfs(path: string, options: { via?: "auto" | "df" } = {}): Promise<DiskSpace> {
    assertRemotePath(path);
    if (options.via !== "df") {
      try {
        const info = await this.#call<Parameters<typeof diskSpaceFromStatvfs>[0]>("statvfs", path, (s, cb) =>
          s.ext_openssh_statvfs(path, cb),
        );
        return diskSpaceFromStatvfs(info);
      } catch (error) {
        if (!(error instanceof SshError && error.sftpStatus === SFTP_STATUS.OP_UNSUPPORTED)) throw error;
      }
    }
    const df = await this.#deps.exec(["df", "-Pk", "--", path], { timeoutMs: this.#deps.timeoutMs });
    const parsed = df.code === 0 ? parseDfPortable(df.stdout) : undefined;
    if (!parsed) {
      throw new SshError(
        "sftp",
        this.#deps.where,
        `df ${path} failed (exit ${df.code}): ${(df.stderr || df.stdout).trim()}`,
        { path },
      );
    }
    return parsed;
  }

  /** The whole file, refused beyond `maxBytes` (default 16 MiB) rather than filling memory. */
  async readFile(path: string, options: { maxBytes?: number } = {}): Promise<Buffer> {
    assertRemotePath(path);
    const maxBytes = options.maxBytes ?? DEFAULT_READ_LIMIT;
    const chunks: Buffer[] = [];
    let total = 0;
    await this.#readStream(path, (chunk) => {
      total += chunk.length;
      if (total > maxBytes) {
        throw new SshError(
          "sftp",
          this.#deps.where,
          `read ${path}: larger than the limit of ${maxBytes} bytes`,
          {
            path,
          },
        );
      }
      chunks.push(chunk);
    });
    return Buffer.concat(chunks, total);
  }

  /** Replaces `path` with `data` atomically, verified by SHA-256 read-back. */
  async writeFileAtomic(
    path: string,
    data: string | Buffer,
    options: WriteOptions = {},
  ): Promise<TransferResult> {
    assertRemotePath(path);
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    return this.#upload(path, sliceChunks(bytes), options);
  }

  /** Uploads a local file over `remotePath` atomically, verified by SHA-256 read-back. */
  async put(localPath: string, remotePath: string, options: WriteOptions = {}): Promise<TransferResult> {
    assertRemotePath(remotePath);
    return this.#upload(remotePath, createReadStream(localPath, { highWaterMark: WRITE_CHUNK }), options);
  }

  /**
   * Downloads `remotePath` to `localPath`: into a local temp file, hashed as it streams in, fsynced,
   * hashed again from disk, both hashes and the size compared, then renamed over `localPath`. A remote
   * file that changes while it is read (size or mtime) fails the download rather than leaving a torn
   * copy; retry it.
   */
  async get(remotePath: string, localPath: string): Promise<DownloadResult> {
    assertRemotePath(remotePath);
    const temp = join(
      dirname(localPath),
      `.${basename(localPath)}.z2mha-${randomBytes(6).toString("hex")}.tmp`,
    );
    let file: FileHandle | undefined;
    try {
      file = await open(temp, "wx", 0o600);
      const local = file;
      const streamed = createHash("sha256");
      let size = 0;
      const { before, after } = await this.#readStream(remotePath, async (chunk) => {
        streamed.update(chunk);
        size += chunk.length;
        await local.write(chunk);
      });
      await local.sync();
      await local.close();
      file = undefined;
      if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || size !== before.size) {
        throw new SshError(
          "sftp",
          this.#deps.where,
          `get ${remotePath}: the file changed while it was read (${before.size} -> ${after.size} bytes, ` +
            `${size} read); retry`,
          { path: remotePath },
        );
      }
      const sha256 = streamed.digest("hex");
      const onDisk = await hashLocalFile(temp);
      if (onDisk.size !== size || onDisk.sha256 !== sha256) {
        throw new SshError(
          "sftp",
          this.#deps.where,
          `get ${remotePath}: the local copy ${temp} does not match what was received ` +
            `(${size} bytes sha256 ${sha256}, on disk ${onDisk.size} bytes sha256 ${onDisk.sha256})`,
          { path: remotePath },
        );
      }
      await renameLocal(temp, localPath);
      await fsyncLocalDir(dirname(localPath));
      return { size, sha256, mtimeMs: before.mtimeMs };
    } catch (error) {
      await file?.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw error;
    }
  }

  async #upload(
    path: string,
    source: AsyncIterable<Buffer> | Iterable<Buffer>,
    options: WriteOptions,
  ): Promise<TransferResult> {
    const { where, logger } = this.#deps;
    const mode = options.mode ?? (await this.#existingMode(path)) ?? 0o644;
    const temp = tempSiblingOf(path);
    let handle: Buffer | undefined;
    try {
      handle = await this.#call<Buffer>("create", temp, (s, cb) => s.open(temp, "wx", { mode }, cb));
      const open = handle;
      const hash = createHash("sha256");
      let size = 0;
      for await (const chunk of source) {
        hash.update(chunk);
        const position = size;
        await this.#call<void>("write", temp, (s, cb) => s.write(open, chunk, 0, chunk.length, position, cb));
        size += chunk.length;
      }
      // The server's umask applies at creation; set the bits we mean explicitly.
      await this.#call<void>("chmod", temp, (s, cb) => s.fchmod(open, mode, cb));
      await this.#call<void>("fsync", temp, (s, cb) => s.ext_openssh_fsync(open, cb)).catch((error) => {
        if (!(error instanceof SshError && error.sftpStatus === SFTP_STATUS.OP_UNSUPPORTED)) throw error;
      });
      await this.#call<void>("close", temp, (s, cb) => s.close(open, cb));
      handle = undefined;
      const sha256 = hash.digest("hex");
      const written = createHash("sha256");
      let readBack = 0;
      await this.#readStream(temp, (chunk) => {
        written.update(chunk);
        readBack += chunk.length;
      });
      const writtenSha = written.digest("hex");
      if (readBack !== size || writtenSha !== sha256) {
        throw new SshError(
          "sftp",
          where,
          `put ${path}: verification failed, sent ${size} bytes sha256 ${sha256} but ${temp} holds ` +
            `${readBack} bytes sha256 ${writtenSha}; the target was not touched`,
          { path },
        );
      }
      await this.rename(temp, path);
      return { size, sha256 };
    } catch (error) {
      if (handle) {
        const open = handle;
        await this.#call<void>("close", temp, (s, cb) => s.close(open, cb)).catch(() => undefined);
      }
      await this.unlink(temp).catch((cleanupError) => {
        if (!isNotFound(cleanupError)) {
          logger.warn(
            { node: where.node, path: temp, err: (cleanupError as Error).message },
            "ssh: could not remove temp file after a failed write",
          );
        }
      });
      throw error;
    }
  }

  async #existingMode(path: string): Promise<number | undefined> {
    try {
      return (await this.stat(path)).mode;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Streams a remote file chunk by chunk; returns its attributes at open and at the end. */
  async #readStream(
    path: string,
    onChunk: (chunk: Buffer) => void | Promise<void>,
  ): Promise<{ before: RemoteStats; after: RemoteStats }> {
    const handle = await this.#call<Buffer>("open", path, (s, cb) => s.open(path, "r", cb));
    try {
      const before = toRemoteStats(await this.#call<Stats>("fstat", path, (s, cb) => s.fstat(handle, cb)));
      if (before.type !== "file") {
        throw new SshError("sftp", this.#deps.where, `read ${path}: not a regular file`, { path });
      }
      let position = 0;
      for (;;) {
        const buffer = Buffer.allocUnsafe(READ_CHUNK);
        const at = position;
        const bytes = await this.#call<number>("read", path, (s, cb) =>
          s.read(handle, buffer, 0, READ_CHUNK, at, (error, bytesRead) => cb(error, bytesRead)),
        );
        if (!bytes) break;
        position += bytes;
        await onChunk(buffer.subarray(0, bytes));
      }
      const after = toRemoteStats(await this.#call<Stats>("fstat", path, (s, cb) => s.fstat(handle, cb)));
      return { before, after };
    } finally {
      await this.#call<void>("close", path, (s, cb) => s.close(handle, cb)).catch(() => undefined);
    }
  }

  /** One SFTP request with the transport's timeout, its error turned into an SshError. */
  async #call<T>(
    what: string,
    path: string,
    request: (sftp: SFTPWrapper, cb: Callback<T>) => void,
  ): Promise<T> {
    const { where, timeoutMs } = this.#deps;
    const sftp = await this.#deps.session();
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new SshError("timeout", where, `${what} ${path}: no answer within ${timeoutMs}ms`, { path }));
      }, timeoutMs);
      const callback: Callback<T> = (error, value) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error) reject(this.#toError(what, path, error));
        else resolve(value as T);
      };
      try {
        request(sftp, callback);
      } catch (error) {
        callback(error as Error);
      }
    });
  }

  #toError(what: string, path: string, error: unknown): SshError {
    if (error instanceof SshError) return error;
    const { where } = this.#deps;
    const { message, code } = asSsh2Error(error);
    if (typeof code === "number") {
      return new SshError("sftp", where, `${what} ${path}: ${message}`, {
        path,
        sftpStatus: code,
        cause: error,
      });
    }
    if (message === "No response from server" || message === "Not connected") {
      return new SshError("closed", where, `${what} ${path}: connection lost`, { path, cause: error });
    }
    if (message.includes("does not support")) {
      return new SshError("sftp", where, `${what} ${path}: not supported by this SFTP server`, {
        path,
        sftpStatus: SFTP_STATUS.OP_UNSUPPORTED,
        cause: error,
      });
    }
    return new SshError("sftp", where, `${what} ${path}: ${message}`, { path, cause: error });
  }
}

const S_IFMT = 0o170000;

function toRemoteStats(stats: Stats): RemoteStats {
  const format = stats.mode & S_IFMT;
  const type: RemoteFileType =
    format === 0o100000
      ? "file"
      : format === 0o040000
        ? "directory"
        : format === 0o120000
          ? "symlink"
          : "other";
  return {
    type,
    size: stats.size,
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    atimeMs: stats.atime * 1000,
    mtimeMs: stats.mtime * 1000,
  };
}

function* sliceChunks(bytes: Buffer): Generator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += WRITE_CHUNK) {
    yield bytes.subarray(offset, offset + WRITE_CHUNK);
  }
}

async function hashLocalFile(path: string): Promise<TransferResult> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest("hex") };
}

async function fsyncLocalDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
