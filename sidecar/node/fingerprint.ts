import { createHash } from "node:crypto";

/**
 * The fingerprint OpenSSH prints for a public key (`ssh-keygen -lf key.pub`, `ssh -v`):
 * "SHA256:" + unpadded base64 of the SHA-256 of the key blob as sent on the wire.
 */
export function openSshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** Fingerprints are compared without base64 padding, which some tools print and OpenSSH omits. */
export function normalizeFingerprint(fingerprint: string): string {
  return fingerprint.trim().replace(/=+$/, "");
}

/** The algorithm name at the start of a key blob ("ssh-ed25519", "ecdsa-sha2-nistp256", ...). */
export function keyTypeOf(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const length = keyBlob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > keyBlob.length) return undefined;
  const name = keyBlob.subarray(4, 4 + length).toString("latin1");
  return /^[\x21-\x7e]+$/.test(name) ? name : undefined;
}
