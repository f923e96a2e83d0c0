/**
 * What can go wrong talking to a node, as data the layers above can branch on:
 * - host-key-mismatch: the server presented a key other than the pinned one; never retried.
 * - auth-failed: the key was refused or cannot be loaded (missing file, wrong passphrase); never retried.
 * - unreachable: no SSH session could be established (refused, no route, no answer within connect_timeout).
 * - timeout: an established session did not answer an operation in time.
 * - closed: the connection went away during an operation, or the transport was closed.
 * - sftp: the server answered a file operation with an error, or a transfer failed verification.
 * Messages name the node and host:port and never include key material.
 */
export type SshErrorKind =
  | "host-key-mismatch"
  | "auth-failed"
  | "unreachable"
  | "timeout"
  | "closed"
  | "sftp";

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7), as found in `SshError.sftpStatus`. */
export const SFTP_STATUS = {
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

export interface SshErrorTarget {
  node: string;
  /** host:port */
  target: string;
}

export interface SshErrorDetails {
  cause?: unknown;
  /** The remote path of a failed file operation. */
  path?: string;
  /** The SFTP status code the server answered with, when it did. */
  sftpStatus?: number;
}

export class SshError extends Error {
  override readonly name = "SshError";
  readonly kind: SshErrorKind;
  readonly node: string;
  readonly target: string;
  readonly path: string | undefined;
  readonly sftpStatus: number | undefined;

  constructor(kind: SshErrorKind, where: SshErrorTarget, message: string, details: SshErrorDetails = {}) {
    super(`node ${where.node} (${where.target}): ${message}`, { cause: details.cause });
    this.kind = kind;
    this.node = where.node;
    this.target = where.target;
    this.path = details.path;
    this.sftpStatus = details.sftpStatus;
  }
}

export function isSshError(error: unknown, kind?: SshErrorKind): error is SshError {
  return error instanceof SshError && (kind === undefined || error.kind === kind);
}

/** True for an SFTP "no such file" answer: the usual way to ask whether a remote path exists. */
export function isNotFound(error: unknown): boolean {
  return isSshError(error, "sftp") && error.sftpStatus === SFTP_STATUS.NO_SUCH_FILE;
}

/** The bits of an ssh2 error we classify on; ssh2 tags its errors with `level` and sometimes `code`. */
export interface Ssh2ErrorShape {
  message: string;
  level?: string;
  code?: string | number;
}

export function asSsh2Error(error: unknown): Ssh2ErrorShape {
  if (error instanceof Error) return error as Error & Ssh2ErrorShape;
  return { message: String(error) };
}
