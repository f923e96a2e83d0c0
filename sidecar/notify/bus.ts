import type { ClusterEvent } from "../types.js";

export type Stamped = ClusterEvent & { seq: number; ts: string };
export type Listener = (event: Stamped) => void;

/**
 * The one place events go through. Publishers never wait for listeners and a throwing listener
 * cannot break a publisher: an SNMP target that is down must not fail a switchover.
 * A short history lets an SSE client that reconnects with Last-Event-ID catch up.
 */
export class EventBus {
  #seq = 0;
  readonly #listeners = new Set<Listener>();
  readonly #history: Stamped[] = [];

  constructor(
    private readonly historySize = 500,
    private readonly onListenerError: (error: unknown) => void = () => {},
  ) {}

  publish(event: ClusterEvent): Stamped {
    const stamped = { ...event, seq: ++this.#seq, ts: new Date().toISOString() } as Stamped;
    this.#history.push(stamped);
    if (this.#history.length > this.historySize) this.#history.shift();
    for (const listener of this.#listeners) {
      try {
        listener(stamped);
      } catch (error) {
        this.onListenerError(error);
      }
    }
    return stamped;
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Events after `seq`, or undefined when they have fallen out of the history. */
  since(seq: number): Stamped[] | undefined {
    const first = this.#history[0];
    if (first && first.seq > seq + 1) return undefined;
    // An id from before a restart (ids start again at 1): what was missed cannot be told.
    if (seq > this.#seq) return undefined;
    return this.#history.filter((e) => e.seq > seq);
  }

  get lastSeq(): number {
    return this.#seq;
  }
}
