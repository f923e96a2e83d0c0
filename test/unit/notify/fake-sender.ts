import type { SnmpTargetConfig } from "../../../sidecar/config/schema.js";
import type { NotificationSender } from "../../../sidecar/notify/snmp-session.js";
import type { OutgoingNotification } from "../../../sidecar/notify/snmp-varbinds.js";

export interface PendingSend {
  notification: OutgoingNotification;
  finish(error?: Error): void;
}

/** A sender that holds every send until the test finishes it; records what it was asked. */
export class FakeSender implements NotificationSender {
  readonly pending: PendingSend[] = [];
  readonly sent: OutgoingNotification[] = [];
  closed = false;

  constructor(
    readonly target?: SnmpTargetConfig,
    readonly engineId?: string,
    private readonly auto?: "ok" | Error,
  ) {}

  send(notification: OutgoingNotification, done: (error: Error | null) => void): void {
    this.sent.push(notification);
    if (this.auto) {
      done(this.auto === "ok" ? null : this.auto);
      return;
    }
    const entry: PendingSend = {
      notification,
      finish: (error) => {
        this.pending.splice(this.pending.indexOf(entry), 1);
        done(error ?? null);
      },
    };
    this.pending.push(entry);
  }

  close(): void {
    this.closed = true;
  }
}

/** Lets setImmediate callbacks (the queue's next send) run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
