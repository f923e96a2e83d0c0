import type { NotificationSender } from "./snmp-session.js";
import type { OutgoingNotification } from "./snmp-varbinds.js";

export type DropReason = "queue_full" | "shutdown";

export interface QueueEvents {
  sent(notification: OutgoingNotification): void;
  failed(notification: OutgoingNotification, error: Error): void;
  dropped(notification: OutgoingNotification, reason: DropReason): void;
  depth(waiting: number): void;
}

export interface TargetQueueOptions {
  capacity: number;
  /**
   * Longest a send may take before it counts as failed, whatever the library does: an inform
   * needs timeout × (retries + 1), plus slack.
   */
  deadlineMs: number;
  createSender: () => NotificationSender;
  events: QueueEvents;
}

/**
 * The notifications waiting for one target, sent one at a time so an inform's retries cannot
 * pile up. When full, the oldest waiting notification makes room. After any failure the sender
 * is closed and rebuilt for the next send: a fresh socket, and for SNMPv3 a fresh discovery of
 * the receiver's engine, which may have restarted.
 */
export class TargetQueue {
  readonly #waiting: OutgoingNotification[] = [];
  #sender: NotificationSender | undefined;
  #inFlight: { notification: OutgoingNotification; timer: NodeJS.Timeout } | undefined;
  #closed = false;
  #scheduled = false;
  readonly #idle = new Set<() => void>();

  constructor(private readonly options: TargetQueueOptions) {}

  get waiting(): number {
    return this.#waiting.length;
  }

  get busy(): boolean {
    return this.#inFlight !== undefined;
  }

  push(notification: OutgoingNotification): void {
    if (this.#closed) {
      this.options.events.dropped(notification, "shutdown");
      return;
    }
    if (this.#waiting.length >= this.options.capacity) {
      const oldest = this.#waiting.shift();
      if (oldest) this.options.events.dropped(oldest, "queue_full");
    }
    this.#waiting.push(notification);
    this.options.events.depth(this.#waiting.length);
    this.#schedule();
  }

  /** Resolves when nothing waits and nothing is in flight, or when `deadlineMs` has passed. */
  drain(deadlineMs: number): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#idle.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, deadlineMs);
      timer.unref();
      this.#idle.add(finish);
    });
  }

  /** Drops what still waits, abandons what is in flight (counted failed), closes the sender. */
  close(): void {
    this.#closed = true;
    for (const notification of this.#waiting.splice(0)) {
      this.options.events.dropped(notification, "shutdown");
    }
    this.options.events.depth(0);
    if (this.#inFlight) this.#settle(new Error("notifier stopped before the send completed"));
    this.#closeSender();
    for (const resolve of [...this.#idle]) resolve();
  }

  #isIdle(): boolean {
    return this.#waiting.length === 0 && this.#inFlight === undefined;
  }

  /**
   * Sends on a later turn of the event loop, never inside push(): the publisher's call stays
   * O(1) even when building a session or localizing SNMPv3 keys (a megabyte of hashing) is due.
   */
  #schedule(): void {
    if (this.#scheduled || this.#closed || this.#inFlight) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#closed || this.#inFlight) return;
    const notification = this.#waiting.shift();
    if (!notification) return;
    this.options.events.depth(this.#waiting.length);
    const timer = setTimeout(
      () => this.#settle(new Error(`no outcome within ${this.options.deadlineMs} ms`)),
      this.options.deadlineMs,
    );
    timer.unref();
    const flight = { notification, timer };
    this.#inFlight = flight;
    try {
      this.#sender ??= this.options.createSender();
      this.#sender.send(notification, (error) => {
        // A late answer for a send already given up on must not settle the next one.
        if (this.#inFlight === flight) this.#settle(error);
      });
    } catch (error) {
      this.#settle(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #settle(error: Error | null): void {
    const flight = this.#inFlight;
    if (!flight) return;
    clearTimeout(flight.timer);
    this.#inFlight = undefined;
    if (error) {
      this.#closeSender();
      this.options.events.failed(flight.notification, error);
    } else {
      this.options.events.sent(flight.notification);
    }
    if (this.#isIdle()) for (const resolve of [...this.#idle]) resolve();
    // Next send on a fresh stack: a sender that answers synchronously must not recurse per item.
    if (this.#waiting.length > 0) this.#schedule();
  }

  #closeSender(): void {
    const sender = this.#sender;
    this.#sender = undefined;
    sender?.close();
  }
}
