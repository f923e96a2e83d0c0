/**
 * A real Home Assistant for the end-to-end test: `hass` (the newest supported release, with its
 * frontend) from the Debian-testing chroot of scripts/setup/60-ha.sh, on a fresh config dir with
 * this repository's integration in custom_components/, driven as a user's browser and scripts
 * drive it: onboarding and config flows over its REST API, states from /api/states, events over
 * its websocket API.
 *
 * It runs in the lab controller's network namespace: it reaches the sidecar at the address `npm run
 * demo` prints, and nothing else (no default route there: the integrations the onboarding sets up
 * by itself cannot reach the internet). It listens on the controller's link-local address, which
 * only the root namespace reaches (the tests, the browser).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { netnsPath } from "../host/namespaces.js";
import { netnsName } from "../host/naming.js";
import { sleep, waitFor } from "../host/run.js";
import { type Lab, REPO } from "../world.js";

export const HASS_PORT = 8123;
export const DOMAIN = "zigbee2mqtt_ha";
const RUN_HASS = join(REPO, "test", "lab", "ha", "run-hass.sh");

export interface Owner {
  name: string;
  username: string;
  password: string;
}

export const OWNER: Owner = { name: "Lab Owner", username: "owner", password: "lab-owner-password-1" };

export interface RestAnswer<T = unknown> {
  status: number;
  body: T;
}

/** One flow step as /api/config/config_entries/flow and /api/repairs/issues/fix answer it. */
export interface FlowResult {
  type: "form" | "create_entry" | "abort" | "menu" | "progress" | "progress_done" | "external";
  flow_id: string;
  handler: string;
  step_id?: string;
  errors?: Record<string, string> | null;
  reason?: string;
  description_placeholders?: Record<string, string> | null;
  result?: { entry_id: string; title: string; state: string; domain: string };
  [key: string]: unknown;
}

export interface HassState {
  entity_id: string;
  state: string;
  attributes: Record<string, unknown> & { friendly_name?: string };
  last_changed: string;
}

export interface HassEvent {
  event_type: string;
  data: Record<string, unknown>;
  time_fired: string;
}

/**
 * The configuration.yaml of a home like any other: its own place and the frontend. No `http:`:
 * Home Assistant listens on :8123 of every address it has, here the controller's, of which the
 * root namespace reaches the link-local one.
 */
function configurationYaml(address: string): string {
  return `# Written by test/lab/ha/hass.ts for the end-to-end test.
homeassistant:
  name: Lab home
  latitude: 52.3731
  longitude: 4.8922
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
  currency: EUR
  language: en
  internal_url: http://${address}:${HASS_PORT}
frontend:
config:
logger:
  default: warning
  logs:
    custom_components.${DOMAIN}: debug
`;
}

export class HomeAssistant {
  readonly url: string;
  readonly logPath: string;
  #process: ChildProcess | undefined;
  #exited: Promise<number | null> = Promise.resolve(null);
  #token = "";

  private constructor(
    readonly lab: Lab,
    readonly configDir: string,
  ) {
    this.url = `http://${lab.info.linkLocal.controller}:${HASS_PORT}`;
    this.logPath = join(configDir, "home-assistant.log");
  }

  /** A fresh config dir in the lab's controller dir (gone with the lab), the integration linked in. */
  static create(lab: Lab): HomeAssistant {
    const dir = join(lab.layout.controller.dir, `homeassistant-${Date.now().toString(36)}`);
    mkdirSync(join(dir, "custom_components"), { recursive: true });
    symlinkSync(join(REPO, "custom_components", DOMAIN), join(dir, "custom_components", DOMAIN));
    writeFileSync(join(dir, "configuration.yaml"), configurationYaml(lab.info.linkLocal.controller));
    return new HomeAssistant(lab, dir);
  }

  get token(): string {
    return this.#token;
  }

  /** Starts hass and waits until its HTTP server answers (onboarding not done yet). */
  async start(timeout = 120_000): Promise<void> {
    const out = openSync(join(this.configDir, "hass.out"), "a");
    const child = spawn(
      "nsenter",
      [
        `--net=${netnsPath(netnsName(this.lab.name, "controller"))}`,
        "--",
        // Every step execs into the next, so hass is this child: it gets SIGTERM should the test
        // process die, and no Home Assistant outlives a run.
        "setpriv",
        "--pdeathsig",
        "TERM",
        "--",
        "bash",
        RUN_HASS,
        this.configDir,
      ],
      { stdio: ["ignore", out, out] },
    );
    this.#process = child;
    this.#exited = new Promise((done) => child.on("exit", (code) => done(code)));
    await waitFor(
      `Home Assistant at ${this.url}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`hass exited with ${child.exitCode}:\n${this.output()}`);
        const response = await fetch(`${this.url}/api/onboarding`, { signal: AbortSignal.timeout(2_000) });
        return response.ok ? true : undefined;
      },
      { timeout, interval: 250 },
    ).catch((error: Error) => {
      child.kill("SIGKILL");
      throw error;
    });
  }

  /** SIGTERM, as systemd stops it, and wait for it to exit. */
  async stop(): Promise<number | null> {
    const child = this.#process;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await this.#exited;
      clearTimeout(timer);
    }
    return this.#exited;
  }

  /** hass's console output (start-up errors) and the end of its log. */
  output(): string {
    const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");
    return `${read(join(this.configDir, "hass.out")).slice(-3000)}\n--- home-assistant.log\n${read(this.logPath).slice(-6000)}`;
  }

  /** The log lines of Home Assistant at WARNING or above that name the integration. */
  integrationProblems(): string[] {
    const log = existsSync(this.logPath) ? readFileSync(this.logPath, "utf8") : "";
    return log
      .split("\n")
      .filter((line) => /\b(WARNING|ERROR|CRITICAL)\b/.test(line) && line.includes(DOMAIN));
  }

  /**
   * Onboarding as the frontend's wizard does it: the owner account (which answers with an
   * authorization code), tokens for it, then the location, analytics and integrations steps.
   */
  async onboard(owner: Owner = OWNER): Promise<void> {
    const clientId = `${this.url}/`;
    const user = await this.rest<{ auth_code: string }>("POST", "/api/onboarding/users", {
      client_id: clientId,
      name: owner.name,
      username: owner.username,
      password: owner.password,
      language: "en",
    });
    if (user.status !== 200) throw new Error(`onboarding/users: ${user.status} ${JSON.stringify(user.body)}`);
    const tokens = await this.authToken({
      grant_type: "authorization_code",
      code: user.body.auth_code,
      client_id: clientId,
    });
    this.#token = tokens.access_token;
    for (const [step, body] of [
      ["core_config", {}],
      ["analytics", {}],
      ["integration", { client_id: clientId, redirect_uri: `${this.url}/?auth_callback=1` }],
    ] as const) {
      const answer = await this.rest("POST", `/api/onboarding/${step}`, body);
      if (answer.status !== 200)
        throw new Error(`onboarding/${step}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
  }

  /** POST /auth/token (form-encoded, as OAuth2 wants it). */
  async authToken(form: Record<string, string>): Promise<{ access_token: string; refresh_token?: string }> {
    const response = await fetch(`${this.url}/auth/token`, {
      method: "POST",
      body: new URLSearchParams(form),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await response.json()) as { access_token: string; refresh_token?: string };
    if (!response.ok) throw new Error(`/auth/token: ${response.status} ${JSON.stringify(body)}`);
    return body;
  }

  /** One REST call with the owner's token (none before onboarding gave one). */
  async rest<T = unknown>(method: string, path: string, body?: unknown): Promise<RestAnswer<T>> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (an error page): the text itself.
    }
    return { status: response.status, body: parsed as T };
  }

  /** Starts a config flow of the integration, as "Add integration" does. */
  async startFlow(): Promise<FlowResult> {
    const answer = await this.rest<FlowResult>("POST", "/api/config/config_entries/flow", {
      handler: DOMAIN,
      show_advanced_options: false,
    });
    if (answer.status !== 200) throw new Error(`flow start: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  /** Submits a form of a config flow. */
  async submitFlow(flowId: string, input: Record<string, unknown>): Promise<FlowResult> {
    const answer = await this.rest<FlowResult>("POST", `/api/config/config_entries/flow/${flowId}`, input);
    if (answer.status !== 200) throw new Error(`flow step: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  async states(): Promise<HassState[]> {
    const answer = await this.rest<HassState[]>("GET", "/api/states");
    if (answer.status !== 200) throw new Error(`/api/states: ${answer.status}`);
    return answer.body;
  }

  async state(entityId: string): Promise<HassState | undefined> {
    const answer = await this.rest<HassState>("GET", `/api/states/${entityId}`);
    return answer.status === 200 ? answer.body : undefined;
  }

  /** Waits until the entity's state satisfies `ok`; returns it. */
  waitForState(
    entityId: string,
    ok: (state: HassState) => boolean,
    what: string,
    timeout = 60_000,
  ): Promise<HassState> {
    return waitFor(
      `${entityId}: ${what}`,
      async () => {
        const state = await this.state(entityId);
        return state && ok(state) ? state : undefined;
      },
      { timeout, interval: 250 },
    );
  }

  /** A websocket API connection authenticated with the owner's token. */
  async socket(): Promise<HassSocket> {
    return HassSocket.connect(`${this.url.replace(/^http/, "ws")}/api/websocket`, this.#token);
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** Home Assistant's websocket API: commands with ids, events of subscriptions kept in order. */
export class HassSocket {
  readonly events: HassEvent[] = [];
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #waiters = new Set<() => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (raw) => {
      const message = JSON.parse(raw.toString()) as {
        id?: number;
        type: string;
        success?: boolean;
        result?: unknown;
        error?: { code: string; message: string };
        event?: HassEvent;
      };
      if (message.type === "event" && message.event) {
        this.events.push(message.event);
        for (const wake of this.#waiters) wake();
        return;
      }
      if (message.type !== "result" || message.id === undefined) return;
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.success) pending.resolve(message.result);
      else pending.reject(new Error(`${message.error?.code}: ${message.error?.message}`));
    });
    ws.on("close", () => {
      for (const pending of this.#pending.values()) pending.reject(new Error("websocket closed"));
      this.#pending.clear();
    });
  }

  static connect(url: string, token: string): Promise<HassSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`no websocket authentication at ${url} within 10 s`));
      }, 10_000);
      ws.on("error", reject);
      ws.once("message", (first) => {
        if (JSON.parse(first.toString()).type !== "auth_required")
          return reject(new Error("no auth_required"));
        ws.once("message", (second) => {
          clearTimeout(timer);
          const answer = JSON.parse(second.toString()) as { type: string; message?: string };
          if (answer.type !== "auth_ok")
            return reject(new Error(`websocket auth: ${JSON.stringify(answer)}`));
          resolve(new HassSocket(ws));
        });
        ws.send(JSON.stringify({ type: "auth", access_token: token }));
      });
    });
  }

  command<T = unknown>(type: string, fields: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, type, ...fields }));
    });
  }

  /** Events of this type from now on land in `events`. */
  async subscribe(eventType: string): Promise<void> {
    await this.command("subscribe_events", { event_type: eventType });
  }

  /** The first event (already received or still to come) of the type that satisfies `accept`. */
  waitForEvent(
    eventType: string,
    accept: (event: HassEvent) => boolean = () => true,
    timeout = 120_000,
  ): Promise<HassEvent> {
    const find = () => this.events.find((e) => e.event_type === eventType && accept(e));
    const found = find();
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no ${eventType} event within ${timeout} ms`));
      }, timeout);
      const check = () => {
        const event = find();
        if (!event) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(event);
      };
      this.#waiters.add(check);
    });
  }

  close(): void {
    this.ws.close();
  }
}

export { sleep };
