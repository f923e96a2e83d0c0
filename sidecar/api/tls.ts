import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";
import { writeFileAtomic } from "../store/atomic.js";

export interface TlsMaterial {
  cert: string;
  key: string;
  /** "SHA256:AB:CD:…", what the CLI's --tls-fingerprint and Home Assistant pin. */
  fingerprint: string;
  /** Where the certificate was read from (for messages). */
  certPath: string;
  generated: boolean;
}

export type TlsConfig = "self_signed" | { cert: string; key: string };

export function fingerprintOf(certPem: string): string {
  return `SHA256:${new X509Certificate(certPem).fingerprint256}`;
}

/**
 * The API's certificate: the configured files, or a self-signed one made on first start and kept
 * in <state_dir>/tls (the key 0600). Self-signed is meant to be pinned by its fingerprint, not
 * trusted through a CA, so it is made for ten years and names the hosts it will be reached by.
 */
export async function loadTls(config: TlsConfig, stateDir: string, host: string): Promise<TlsMaterial> {
  if (config !== "self_signed") {
    const cert = readFileSync(config.cert, "utf8");
    return {
      cert,
      key: readFileSync(config.key, "utf8"),
      fingerprint: fingerprintOf(cert),
      certPath: config.cert,
      generated: false,
    };
  }
  const dir = join(stateDir, "tls");
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  if (existsSync(certPath) && existsSync(keyPath)) {
    const cert = readFileSync(certPath, "utf8");
    return {
      cert,
      key: readFileSync(keyPath, "utf8"),
      fingerprint: fingerprintOf(cert),
      certPath,
      generated: false,
    };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const names = [
    ...new Set([hostname(), "localhost", host].filter((h) => h && h !== "0.0.0.0" && h !== "::")),
  ];
  const ips = [...new Set(["127.0.0.1", ...names.filter((n) => isIP(n))])];
  const notBefore = new Date(Date.now() - 86_400_000);
  const notAfter = new Date(notBefore.getTime() + 10 * 365 * 86_400_000);
  const pems = await generate([{ name: "commonName", value: `zigbee2mqtt-ha ${hostname()}` }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          ...names.filter((n) => !isIP(n)).map((value) => ({ type: 2 as const, value })),
          ...ips.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  });
  writeFileAtomic(keyPath, pems.private, 0o600);
  writeFileAtomic(certPath, pems.cert, 0o644);
  return {
    cert: pems.cert,
    key: pems.private,
    fingerprint: fingerprintOf(pems.cert),
    certPath,
    generated: true,
  };
}
