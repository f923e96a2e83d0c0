import type { ClientChannel } from "ssh2";

/** The parts of ssh2's channel internals needed to send a "signal" request after EOF. */
interface ChannelInternals {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal?: (channelId: number, signal: string) => void } };
}

/**
 * Sends the SSH "signal" channel request (RFC 4254 §6.9). ssh2's `channel.signal()` silently does
 * nothing once we have sent EOF on stdin, which every exec does at once so that commands reading
 * stdin do not hang; the protocol allows channel requests after EOF and OpenSSH honours them, so we
 * go one level down. Returns whether the request was sent.
 */
export function sendChannelSignal(channel: ClientChannel, signal: "KILL" | "TERM" | "INT" | "HUP"): boolean {
  const internals = channel as unknown as ChannelInternals;
  const id = internals.outgoing?.id;
  const state = internals.outgoing?.state;
  const protocol = internals._client?._protocol;
  if (
    typeof id === "number" &&
    (state === "open" || state === "eof") &&
    typeof protocol?.signal === "function"
  ) {
    protocol.signal(id, signal);
    return true;
  }
  // ssh2's internals changed shape: use the public method, which works while stdin is still open.
  channel.signal(signal);
  return false;
}
