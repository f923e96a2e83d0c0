import ssh2 from "ssh2";
import { keyTypeOf, openSshFingerprint } from "./fingerprint.js";

export interface ScannedHostKey {
  /** "ssh-ed25519", ... */
  type: string;
  /** As `ssh-keygen -lf` prints it: "SHA256:...". */
  fingerprint: string;
}

/**
 * The host key a node's sshd presents, for trust on first use: the handshake is made with the
 * same SSH library and the same algorithm preferences as the sidecar's transport (so the key is
 * the one the transport will be shown later), and broken off at the key, before authentication.
 */
export function scanHostKey(host: string, port: number, timeoutMs = 10_000): Promise<ScannedHostKey> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let presented: ScannedHostKey | undefined;
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      client.removeAllListeners();
      client.on("error", () => undefined);
      client.destroy();
      if (presented) resolve(presented);
      else reject(error ?? new Error(`${host}:${port} closed the connection before presenting a host key`));
    };
    client.on("error", (error: Error) =>
      finish(new Error(`cannot reach the SSH server at ${host}:${port}: ${error.message}`)),
    );
    client.on("close", () => finish());
    client.on("ready", () => finish());
    try {
      client.connect({
        host,
        port,
        username: "zigbee2mqtt-ha-host-key-scan",
        readyTimeout: timeoutMs,
        hostVerifier: (key: Buffer): boolean => {
          presented = { type: keyTypeOf(key) ?? "unknown-type", fingerprint: openSshFingerprint(key) };
          return false;
        },
      });
    } catch (error) {
      finish(error as Error);
    }
  });
}
