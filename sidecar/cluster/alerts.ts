import type { EventBus } from "../notify/bus.js";
import type { Alert, AlertKind } from "../types.js";

/** Current alerts, one per kind and node; raising again updates the message without a new event. */
export class Alerts {
  readonly #active = new Map<string, Alert>();

  constructor(private readonly bus: EventBus) {}

  raise(kind: AlertKind, severity: Alert["severity"], message: string, node?: string): Alert {
    const key = `${kind}/${node ?? ""}`;
    const existing = this.#active.get(key);
    const alert: Alert = {
      kind,
      severity,
      message,
      at: existing?.at ?? new Date().toISOString(),
      ...(node ? { node } : {}),
    };
    this.#active.set(key, alert);
    if (!existing || existing.message !== message || existing.severity !== severity) {
      this.bus.publish({ type: "alert.raised", alert });
    }
    return alert;
  }

  clear(kind: AlertKind, node?: string): void {
    const key = `${kind}/${node ?? ""}`;
    if (this.#active.delete(key)) {
      this.bus.publish({
        type: "alert.cleared",
        alert: { kind, at: new Date().toISOString(), ...(node ? { node } : {}) },
      });
    }
  }

  has(kind: AlertKind, node?: string): boolean {
    return this.#active.has(`${kind}/${node ?? ""}`);
  }

  list(): Alert[] {
    return [...this.#active.values()];
  }
}
