/**
 * End to end, as a Home Assistant user meets the product: a real `hass` (the newest supported
 * release, with its frontend; test/lab/ha/hass.ts) on a fresh config dir, onboarded over its REST
 * API, against the lab running the demo (the real sidecar in the controller, real zigbee2mqtt on
 * the nodes). The integration is added through the config-flow API the "Add integration" dialog
 * uses, its entities are read from /api/states, its buttons pressed through /api/services, and
 * what it fires is watched on the websocket API. Then a browser (Debian's Chromium, headless) logs
 * in and looks at the hub's and a node's device pages and a dashboard of the entities.
 *
 * One Home Assistant for the whole file (it takes ~15 s to start): the tests run in order, each
 * building on the one before, as a user's afternoon would.
 */
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { type Browser, logIn, openBrowser, settle, visibleTexts } from "./ha/browser.js";
import { type FlowResult, type HassSocket, type HassState, HomeAssistant, OWNER } from "./ha/hass.js";
import { baseline, type SidecarHandle, startSidecar } from "./sidecar-harness.js";
import { Lab, REPO, type RunningSidecar } from "./world.js";

/** `Z2MHA_UPDATE_SCREENSHOTS=1` copies the pictures into docs/images/ (review them in the diff). */
const DOCS_IMAGES = join(REPO, "docs", "images");

let lab: Lab;
let h: SidecarHandle;
let hass: HomeAssistant;
let socket: HassSocket;
let entryId = "";
let instanceId = "";

/** The integration's entities: entity id by unique id suffix (`active_node`, `node2_health`, ...). */
let entities: Map<string, string>;
let browser: Browser | undefined;

function entity(key: string): string {
  const found = entities.get(key);
  if (!found) throw new Error(`no entity with unique id ${instanceId}_${key}; have ${[...entities.keys()]}`);
  return found;
}

async function sidecarUp(): Promise<RunningSidecar> {
  return lab.startSidecar(h.configPath);
}

beforeAll(async () => {
  lab = await Lab.attach(inject("labName"));
  await baseline(lab);
  h = await startSidecar(lab);
  instanceId = ((await h.api.call("GET", "/api/v1/info")) as { instance_id: string }).instance_id;
  hass = HomeAssistant.create(lab);
  await hass.start();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  socket?.close();
  const code = await hass?.stop();
  if (code !== 0 && hass) console.log(`hass exited with ${code}; its config dir: ${hass.configDir}`);
  await h?.sidecar.stop();
});

describe("a fresh Home Assistant", () => {
  test("has, from test/ha/requirements-e2e.txt, exactly what its release's manifests pin", () => {
    const site = join(
      process.env.Z2MHA_CACHE ?? "/var/cache/zigbee2mqtt-ha",
      "ha-chroot/opt/ha-venv/lib/python3.14/site-packages/homeassistant/components",
    );
    const pinned = new Set(
      [
        "frontend",
        "conversation",
        "assist_pipeline",
        "assist_satellite",
        "camera",
        "tts",
        "ffmpeg",
        "infrared",
        "radio_frequency",
      ].flatMap(
        (domain) =>
          (
            JSON.parse(readFileSync(join(site, domain, "manifest.json"), "utf8")) as {
              requirements?: string[];
            }
          ).requirements ?? [],
      ),
    );
    const ours = readFileSync(join(REPO, "test/ha/requirements-e2e.txt"), "utf8")
      .split("\n")
      .filter((line) => line.trim() && !line.startsWith("#"));
    expect(new Set(ours)).toEqual(pinned);
  });

  test("is onboarded over its REST API: owner, location, analytics, integrations", async () => {
    expect((await hass.rest<{ step: string; done: boolean }[]>("GET", "/api/onboarding")).body).toEqual(
      expect.arrayContaining([{ step: "user", done: false }]),
    );
    await hass.onboard();
    const steps = (await hass.rest<{ step: string; done: boolean }[]>("GET", "/api/onboarding")).body;
    expect(steps.map((s) => s.done)).toEqual(steps.map(() => true));
    // The owner's token works for the REST and the websocket API.
    expect((await hass.rest("GET", "/api/")).body).toEqual({ message: "API running." });
    socket = await hass.socket();
    await socket.subscribe("zigbee2mqtt_ha_switchover");
    await socket.subscribe("zigbee2mqtt_ha_failover");
  });
});

describe("adding the sidecar (Settings → Devices & services → Add integration)", () => {
  async function userForm(): Promise<FlowResult> {
    const form = await hass.startFlow();
    expect(form).toMatchObject({ type: "form", step_id: "user" });
    return form;
  }

  test("a wrong token is refused on the token field", async () => {
    const form = await userForm();
    const result = await hass.submitFlow(form.flow_id, { url: h.sidecar.url, token: "not-the-token-at-all" });
    expect(result).toMatchObject({ type: "form", step_id: "user", errors: { token: "invalid_auth" } });
  });

  test("an unreachable URL is refused on the URL field", async () => {
    const form = await userForm();
    // The controller's own address, on a port nothing listens on: refused at once.
    const url = `http://${lab.info.linkLocal.controller}:1`;
    const result = await hass.submitFlow(form.flow_id, { url, token: h.sidecar.token });
    expect(result).toMatchObject({ type: "form", errors: { url: "cannot_connect" } });
  });

  test("the URL and token `npm run demo` prints add it, named after the cluster", async () => {
    const form = await userForm();
    const result = await hass.submitFlow(form.flow_id, { url: h.sidecar.url, token: h.sidecar.token });
    expect(result.type).toBe("create_entry");
    expect(result.result).toMatchObject({
      domain: "zigbee2mqtt_ha",
      state: "loaded",
      title: `lab-${lab.name}`,
    });
    entryId = result.result!.entry_id;
    const registry = await socket.command<{ entity_id: string; unique_id: string; platform: string }[]>(
      "config/entity_registry/list",
    );
    entities = new Map(
      registry
        .filter((e) => e.platform === "zigbee2mqtt_ha" && e.unique_id.startsWith(`${instanceId}_`))
        .map((e) => [e.unique_id.slice(instanceId.length + 1), e.entity_id]),
    );
    expect(entities.size).toBeGreaterThan(0);
  });

  test("the same sidecar again is refused, even under another spelling of its URL", async () => {
    const form = await userForm();
    const result = await hass.submitFlow(form.flow_id, { url: `${h.sidecar.url}/`, token: h.sidecar.token });
    expect(result).toMatchObject({ type: "abort", reason: "already_configured" });
    const entries = (await hass.rest<{ domain: string }[]>("GET", "/api/config/config_entries/entry")).body;
    expect(entries.filter((e) => e.domain === "zigbee2mqtt_ha")).toHaveLength(1);
  });
});

describe("what the integration shows", () => {
  test("a hub device and one device per node, named as the docs say", async () => {
    const devices = await socket.command<{ id: string; name: string; config_entries: string[] }[]>(
      "config/device_registry/list",
    );
    const ours = devices.filter((d) => d.config_entries.includes(entryId)).map((d) => d.name);
    expect(ours.sort()).toEqual([
      "zigbee2mqtt node1",
      "zigbee2mqtt node2",
      "zigbee2mqtt node3",
      "zigbee2mqtt-ha",
    ]);
  });

  test("the states say what the sidecar says: node1 active, its bridge online, the standbys ready", async () => {
    // The sidecar syncs the standbys after adopting node1; they become ready by themselves.
    for (const node of ["node2", "node3"])
      await hass.waitForState(entity(`${node}_standby_ready`), (s) => s.state === "on", "ready", 120_000);
    const status = await h.api.status();
    const byId = new Map((await hass.states()).map((s) => [s.entity_id, s]));
    const state = (key: string): HassState => {
      const found = byId.get(entity(key));
      if (!found) throw new Error(`no state for ${entity(key)}`);
      return found;
    };
    expect(state("active_node").state).toBe(status.active);
    expect(state("active_node").attributes).toMatchObject({
      friendly_name: "zigbee2mqtt-ha Active node",
      options: ["node1", "node2", "node3"],
    });
    expect(state("bridge_online").state).toBe("on");
    expect(state("current_operation").state).toBe("idle");
    expect(state("node1_health").state).toBe("active_healthy");
    expect(state("node1_reachable").state).toBe("on");
    expect(state("node1_standby_ready").state).toBe("off");
    for (const node of status.nodes.filter((n) => n.id !== status.active)) {
      expect(state(`${node.id}_health`).state).toBe(node.health.replace("-", "_"));
      expect(state(`${node.id}_health`).attributes.friendly_name).toBe(`zigbee2mqtt ${node.id} Health`);
    }
    expect(state("automatic_failover").state).toBe(status.automation.automatic_failover ? "on" : "off");
  });
});

describe("switching over from Home Assistant", () => {
  test("the Switch over button moves the network; the sensor and the event follow", async () => {
    const before = await h.api.status();
    expect(before.active).toBe("node1");
    const pressed = await hass.rest("POST", "/api/services/button/press", {
      entity_id: entity("switchover"),
    });
    expect(pressed.status).toBe(200);

    // The sidecar runs it, started by Home Assistant.
    const started = await h.api.waitFor("a switchover started by Home Assistant", async () =>
      (await h.api.operations("switchover")).find((op) => op.trigger === "home-assistant"),
    );
    const finished = await h.api.finish(started);
    expect(finished).toMatchObject({ status: "succeeded", params: { from: "node1" } });
    const to = (finished.result as { to: string }).to;
    expect(["node2", "node3"]).toContain(to);
    expect((await h.api.status()).active).toBe(to);

    await hass.waitForState(entity("active_node"), (s) => s.state === to, `active ${to}`);
    const event = await socket.waitForEvent(
      "zigbee2mqtt_ha_switchover",
      (e) => e.data.operation_id === started.id,
    );
    expect(event.data).toMatchObject({
      config_entry_id: entryId,
      instance_id: instanceId,
      outcome: "succeeded",
      succeeded: true,
      from: "node1",
      to,
      trigger: "home-assistant",
    });
    const shown = await hass.waitForState(
      entity("switchover_finished"),
      (s) => s.attributes.event_type === "succeeded",
      "the switchover's end",
    );
    expect(shown.attributes).toMatchObject({ operation_id: started.id, from: "node1", to });
    await hass.waitForState(entity("current_operation"), (s) => s.state === "idle", "idle again");
    await hass.waitForState(
      entity("node1_standby_ready"),
      (s) => s.state === "on",
      "node1 a ready standby",
      120_000,
    );
  });
});

describe("a failover (the sidecar's, as its policy would start it)", () => {
  test("the active-node sensor and the failover event entity follow; the bus event fires", async () => {
    const from = (await h.api.status()).active!;
    const started = await h.api.start("failover", { target: "node1", reason: "lab: unplanned takeover" });
    const finished = await h.api.finish(started);
    expect(finished).toMatchObject({ status: "succeeded" });
    await hass.waitForState(entity("active_node"), (s) => s.state === "node1", "active node1");
    const event = await socket.waitForEvent(
      "zigbee2mqtt_ha_failover",
      (e) => e.data.operation_id === started.id,
    );
    expect(event.data).toMatchObject({ outcome: "succeeded", from, to: "node1", trigger: "api" });
    await hass.waitForState(
      entity("failover_finished"),
      (s) => s.attributes.event_type === "succeeded" && s.attributes.operation_id === started.id,
      "the failover's end",
    );
    expect((await hass.state(entity("last_switchover")))?.attributes).toMatchObject({
      from,
      to: "node1",
      kind: "failover",
    });
  });
});

describe("the sidecar goes away and comes back", () => {
  test("stopped: every entity unavailable; restarted: all back, the stream live again", async () => {
    const watched = ["active_node", "bridge_online", "automatic_failover", "switchover", "node1_health"];
    const before = new Map<string, string>();
    for (const key of watched) before.set(key, (await hass.state(entity(key)))!.state);

    await h.sidecar.stop();
    for (const key of watched)
      await hass.waitForState(entity(key), (s) => s.state === "unavailable", "unavailable", 60_000);

    h.sidecar = await sidecarUp();
    for (const key of watched)
      await hass.waitForState(
        entity(key),
        (s) => s.state === before.get(key),
        `back to ${before.get(key)}`,
        90_000,
      );

    // A change made elsewhere arrives over the event stream again.
    await h.api.call("PUT", "/api/v1/automation", { maintenance: true });
    await hass.waitForState(entity("maintenance"), (s) => s.state === "on", "maintenance on");
    await h.api.call("PUT", "/api/v1/automation", { maintenance: false });
    await hass.waitForState(entity("maintenance"), (s) => s.state === "off", "maintenance off");
  });
});

/** Texts that must not be on a page: raw state keys, entity ids, translation keys, the instance id. */
function rawTexts(texts: string[]): string[] {
  return texts.filter(
    (text) =>
      /^unknown$/i.test(text) ||
      text.includes("zigbee2mqtt_ha") ||
      text.includes("component.") ||
      text.includes(instanceId) ||
      /\b(sensor|binary_sensor|button|switch|event)\.[a-z0-9_]+/.test(text) ||
      /^[a-z0-9]+(_[a-z0-9]+)+$/.test(text),
  );
}

describe("in the browser (Debian's Chromium, headless)", () => {
  const shots = () => join(hass.configDir, "screenshots");

  async function capture(name: string, path: string): Promise<string[]> {
    const page = browser!.page;
    await page.goto(`${hass.url}${path}`);
    await settle(page);
    const file = join(shots(), `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    if (process.env.Z2MHA_UPDATE_SCREENSHOTS === "1") {
      mkdirSync(DOCS_IMAGES, { recursive: true });
      copyFileSync(file, join(DOCS_IMAGES, `${name}.png`));
    }
    return visibleTexts(page);
  }

  async function deviceId(name: string): Promise<string> {
    const devices = await socket.command<{ id: string; name: string; config_entries: string[] }[]>(
      "config/device_registry/list",
    );
    const found = devices.find((d) => d.name === name && d.config_entries.includes(entryId));
    if (!found) throw new Error(`no device ${name}`);
    return found.id;
  }

  beforeAll(async () => {
    mkdirSync(shots(), { recursive: true });
    // The pages are captured settled, as a user mostly sees them: the sidecar's restart above
    // starts a sync (which also arms the standbys' dongles), and the pages would show it running.
    await hass.waitForState(entity("current_operation"), (s) => s.state === "idle", "idle", 180_000);
    await hass.waitForState(
      entity("node2_health"),
      (s) => s.state === "standby_ready",
      "node2 standby, ready",
      180_000,
    );
    browser = await openBrowser(hass.url);
    await logIn(browser.page, hass.url, OWNER);
  }, 120_000);

  test("the hub's device page: every entity named and with a value", async () => {
    const texts = await capture(
      "ha-hub-device",
      `/config/devices/device/${await deviceId("zigbee2mqtt-ha")}`,
    );
    expect(rawTexts(texts)).toEqual([]);
    for (const name of [
      "Active node",
      "Bridge online",
      "Current operation",
      "Last switchover",
      "Switch over",
    ])
      expect(texts).toContain(name);
    expect(texts).toContain("node1");
    expect(texts).toContain("Idle");
    expect(texts).toEqual(
      expect.arrayContaining(["zigbee2mqtt node1", "zigbee2mqtt node2", "zigbee2mqtt node3"]),
    );
  });

  test("a node's device page: its health in words, connected via the hub", async () => {
    const texts = await capture(
      "ha-node-device",
      `/config/devices/device/${await deviceId("zigbee2mqtt node2")}`,
    );
    expect(rawTexts(texts)).toEqual([]);
    expect(texts).toEqual(
      expect.arrayContaining(["Connected via", "zigbee2mqtt-ha", "Make active", "Health"]),
    );
    expect(texts).toContain("Standby, ready");
  });

  test("a dashboard of the entities", async () => {
    const hub = [
      "active_node",
      "current_operation",
      "bridge_online",
      "last_switchover",
      "last_sync",
      "last_coordinator_snapshot",
      "switchover_finished",
      "failover_finished",
      "automatic_failover",
      "maintenance",
      "switchover",
      "sync",
    ];
    // One card per device, titled with its name, each row with the entity's own name (the device's
    // would repeat on every row): as the device pages group them.
    const card = (title: string, keys: string[]) => ({
      type: "entities",
      title,
      state_color: true,
      // The card's own toggle would flip automatic failover and maintenance mode together.
      show_header_toggle: false,
      entities: keys.map((key) => ({ entity: entity(key), name: { type: "entity" } })),
    });
    const nodeKeys = ["health", "reachable", "standby_ready", "make_active"];
    await socket.command("lovelace/dashboards/create", {
      url_path: "zigbee-ha",
      title: "Zigbee HA",
      icon: "mdi:zigbee",
      mode: "storage",
      show_in_sidebar: true,
      require_admin: false,
    });
    await socket.command("lovelace/config/save", {
      url_path: "zigbee-ha",
      config: {
        views: [
          {
            title: "Cluster",
            path: "cluster",
            cards: [
              card("zigbee2mqtt-ha", hub),
              ...["node1", "node2", "node3"].map((node) =>
                card(
                  `zigbee2mqtt ${node}`,
                  nodeKeys.map((key) => `${node}_${key}`),
                ),
              ),
            ],
          },
        ],
      },
    });
    const texts = await capture("ha-dashboard", "/zigbee-ha/cluster");
    expect(rawTexts(texts)).toEqual([]);
    expect(texts).toEqual(
      expect.arrayContaining(["Active node", "Switchover finished", "Failover finished"]),
    );
    // What the browser tried to fetch from elsewhere was refused (nothing leaves the machine).
    if (browser!.refused.length > 0) console.log(`refused for the browser: ${browser!.refused.join(", ")}`);
  });
});

describe("Home Assistant's log", () => {
  test("holds, about the integration, only the unavailable sidecar, once", () => {
    const problems = hass.integrationProblems().map((line) => line.replace(/^\S+ \S+ /, ""));
    // Home Assistant warns about every custom integration; the stopped sidecar is logged once
    // when its entities become unavailable (and its return at info level), not at each retry.
    expect(problems).toEqual([
      expect.stringMatching(/^WARNING .*custom integration zigbee2mqtt_ha which has not been tested/),
      expect.stringMatching(
        /^ERROR .*Error fetching zigbee2mqtt-ha lab-\w+ data: The zigbee2mqtt-ha sidecar does not answer/,
      ),
    ]);
  });
});
