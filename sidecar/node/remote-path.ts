import { randomBytes } from "node:crypto";
import { posix } from "node:path";

/**
 * Remote paths are always absolute: over SFTP a relative path silently means "relative to the
 * login user's home", which is never what a config value like data_dir intends.
 */
export function assertRemotePath(path: string): void {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new TypeError(`remote path ${JSON.stringify(path)} must be absolute`);
  }
  if (path.includes("\0")) throw new TypeError(`remote path ${JSON.stringify(path)} contains a NUL byte`);
}

/**
 * Guards the recursive delete: an absolute, already-normalised path at least two levels deep
 * ("/home/zigbee/x", not "/", "/home" or "/a/../b"). A path that needs normalising is refused
 * rather than normalised, because it most likely came from a bug upstream.
 */
export function assertRemovablePath(path: string): void {
  assertRemotePath(path);
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (
    posix.normalize(trimmed) !== trimmed ||
    trimmed.split("/").some((part) => part === "." || part === "..")
  ) {
    throw new TypeError(`refusing to delete ${JSON.stringify(path)}: not a normalised path`);
  }
  const depth = trimmed.split("/").filter(Boolean).length;
  if (depth < 2) {
    throw new TypeError(`refusing to delete ${JSON.stringify(path)}: too close to the root directory`);
  }
}

/**
 * A hidden sibling of `path` for writing before the atomic rename: same directory (rename(2) is only
 * atomic within one file system), a random part (concurrent writers), a recognisable suffix (so a
 * leftover from a crash can be identified and cleaned).
 */
export function tempSiblingOf(path: string): string {
  const dir = posix.dirname(path);
  const base = posix.basename(path).slice(0, 180);
  return posix.join(dir, `.${base}.z2mha-${randomBytes(6).toString("hex")}.tmp`);
}

export const TEMP_SUFFIX = /\.z2mha-[0-9a-f]{12}\.tmp$/;
