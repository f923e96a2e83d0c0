import type { ClientChannel, Client as Ssh2Client } from "ssh2";
import { sendChannelSignal } from "./channel-signal.js";
import { SshError, type SshErrorTarget } from "./ssh-errors.js";
import { TailBuffer } from "./tail-buffer.js";

export interface ExecOptions {
  /** Kill the remote command after this long (default: the transport's default, 60 s). */
  timeoutMs?: number;
  /** Written to the command's stdin, then EOF. Without it stdin is closed at once. */
  input?: string | Buffer;
  /** Bytes kept per stream; the tail is kept when a stream is longer (default 1 MiB). */
  maxOutputBytes?: number;
  /** Absolute directory to run the command in. */
  cwd?: string;
  /**
   * Ends the remote command when aborted, as a timeout does (TERM, then KILL), and rejects with
   * the abort's reason once the channel is closed: an abandoned step leaves nothing running.
   */
  signal?: AbortSignal;
}

export interface ExecResult {
  /** Exit status; null when the command died of a signal or was killed on timeout. */
  code: number | null;
  /** Terminating signal as Node names it ("SIGKILL"), or null. */
  signal: string | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

export interface ChannelExecParams {
  where: SshErrorTarget;
  command: string;
  /** For messages: the program being run. */
  program: string;
  timeoutMs: number;
  maxOutputBytes: number;
  input: string | Buffer | undefined;
  /** How long opening the session channel may take. */
  openTimeoutMs: number;
  /** After TERM, how long a timed-out command has to exit before KILL. */
  termGraceMs: number;
  /** After KILL, how long to wait for the server to close the channel before giving up on it. */
  killGraceMs: number;
  signal?: AbortSignal | undefined;
}

/** The client's socket was already gone: nothing was sent, so the caller may reconnect and retry. */
export class StaleClientError extends Error {
  override readonly name = "StaleClientError";
}

/**
 * The server refused the session channel, so the command did not start. OpenSSH does this when the
 * connection has MaxSessions open, which can briefly include sessions we already saw close: it
 * frees a session only after processing our close, possibly after our next open. Worth a retry.
 */
export class ChannelRefusedError extends Error {
  override readonly name = "ChannelRefusedError";
}

/**
 * Runs one command on an open session channel. A command that outlives its timeout gets the SSH
 * "signal" channel request: TERM (a sudo in between relays it to the command), then KILL after a
 * grace period, then the channel is closed. OpenSSH delivers these with killpg() to the process
 * group of the session, so children die too. OpenSSH refuses them for root logins and cannot reach
 * processes of another user (a command under sudo that ignores TERM): see docs/ssh.md.
 * Output is captured up to a bound per stream, keeping the end.
 */
export function execOnChannel(client: Ssh2Client, params: ChannelExecParams): Promise<ExecResult> {
  const { where, program } = params;
  return new Promise<ExecResult>((resolve, reject) => {
    if (params.signal?.aborted) {
      reject(abortReason(params.signal));
      return;
    }
    const started = performance.now();
    const stdout = new TailBuffer(params.maxOutputBytes);
    const stderr = new TailBuffer(params.maxOutputBytes);
    let code: number | null = null;
    let signal: string | null = null;
    let exited = false;
    let timedOut = false;
    let aborted = false;
    let finished = false;
    const timers = new Set<NodeJS.Timeout>();

    const later = (ms: number, fn: () => void) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        fn();
      }, ms);
      timers.add(timer);
      return timer;
    };
    const settle = () => {
      finished = true;
      for (const timer of timers) clearTimeout(timer);
      client.removeListener("close", onConnectionLost);
      params.signal?.removeEventListener("abort", onAbort);
    };
    const fail = (error: Error) => {
      if (finished) return;
      settle();
      reject(error);
    };
    const succeed = () => {
      if (finished) return;
      if (aborted) {
        fail(abortReason(params.signal));
        return;
      }
      settle();
      resolve({
        code,
        signal,
        stdout: stdout.toString(),
        stderr: stderr.toString(),
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
        timedOut,
        durationMs: Math.round(performance.now() - started),
      });
    };
    // ssh2 emits the connection's close before it closes the channels, so this comes first and a
    // command cut off by a lost connection is never mistaken for one that exited.
    const onConnectionLost = () =>
      fail(new SshError("closed", where, `connection lost while running ${program}; its outcome is unknown`));
    client.once("close", onConnectionLost);
    // Set once the channel is open: TERM, KILL and close, as on a timeout.
    let stopRemote: (() => void) | undefined;
    // Before the channel opens there is nothing to signal yet: the command is stopped as soon as
    // it opens (or the open times out), never left running unseen.
    const onAbort = () => {
      aborted = true;
      stopRemote?.();
    };
    params.signal?.addEventListener("abort", onAbort, { once: true });

    const openTimer = later(params.openTimeoutMs, () =>
      fail(
        new SshError("timeout", where, `no session channel for ${program} within ${params.openTimeoutMs}ms`),
      ),
    );

    const onChannel = (error: Error | undefined, channel: ClientChannel) => {
      clearTimeout(openTimer);
      timers.delete(openTimer);
      if (finished) {
        channel?.close();
        return;
      }
      if (error) {
        fail(
          /Channel open failure/i.test(error.message)
            ? new ChannelRefusedError(error.message)
            : new SshError("closed", where, `the server refused to run ${program}: ${error.message}`),
        );
        return;
      }
      channel.on("data", (chunk: Buffer) => stdout.push(chunk));
      channel.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
      channel.on("error", () => undefined);
      channel.on("exit", (exitCode: number | null, exitSignal?: string) => {
        exited = true;
        code = typeof exitCode === "number" ? exitCode : null;
        signal = exitSignal ?? null;
      });
      channel.on("close", () => {
        if (exited || timedOut || aborted) succeed();
        else
          fail(new SshError("closed", where, `the session running ${program} ended without an exit status`));
      });
      let stopping = false;
      stopRemote = () => {
        if (stopping) return;
        stopping = true;
        sendChannelSignal(channel, "TERM");
        later(params.termGraceMs, () => {
          sendChannelSignal(channel, "KILL");
          channel.close();
          later(params.killGraceMs, succeed);
        });
      };
      later(params.timeoutMs, () => {
        timedOut = true;
        stopRemote?.();
      });
      if (aborted) stopRemote();
      if (params.input === undefined) channel.end();
      else channel.end(params.input);
    };

    try {
      client.exec(params.command, onChannel);
    } catch (error) {
      settle();
      reject(new StaleClientError((error as Error).message));
    }
  });
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason = signal?.reason;
  return reason instanceof Error ? reason : new Error("the command was cancelled");
}
