import { existsSync, readFileSync, rmSync } from "node:fs";
import { run } from "./run.js";

/** Creates an ed25519 key pair at `path` (and `path`.pub) unless one is there. */
export async function ensureKeyPair(path: string, comment: string): Promise<void> {
  if (existsSync(path) && existsSync(`${path}.pub`)) return;
  await newKeyPair(path, comment);
}

/** Replaces whatever key is at `path` with a fresh ed25519 pair. */
export async function newKeyPair(path: string, comment: string): Promise<void> {
  rmSync(path, { force: true });
  rmSync(`${path}.pub`, { force: true });
  await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path]);
}

/** The OpenSSH SHA256 fingerprint of a public key file, as `ssh-keygen -lf` prints it ("SHA256:..."). */
export async function fingerprint(publicKeyPath: string): Promise<string> {
  const result = await run(["ssh-keygen", "-l", "-E", "sha256", "-f", publicKeyPath]);
  const match = /\b(SHA256:[A-Za-z0-9+/]{43})\b/.exec(result.stdout);
  if (!match?.[1]) throw new Error(`no fingerprint in ssh-keygen output: ${result.stdout}`);
  return match[1];
}

/** "ssh-ed25519 AAAA... comment" of a public key file, trimmed. */
export function publicKeyLine(publicKeyPath: string): string {
  return readFileSync(publicKeyPath, "utf8").trim();
}
