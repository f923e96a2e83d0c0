import { mkdtempSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "../../../sidecar/api/app.js";
import { Alerts } from "../../../sidecar/cluster/alerts.js";
import { NotFoundError, PreconditionError } from "../../../sidecar/cluster/errors.js";
import { OperationRunner } from "../../../sidecar/cluster/runner.js";
import type { ClusterService } from "../../../sidecar/cluster/service.js";
import { createRegistry } from "../../../sidecar/metrics.js";
import { EventBus } from "../../../sidecar/notify/bus.js";
import { Journal } from "../../../sidecar/store/journal.js";
import { StateStore } from "../../../sidecar/store/state.js";
import type {
  AutomationState,
  ClusterInfo,
  ClusterStatus,
  NodeDetail,
  OperationRecord,
  SnapshotInfo,
} from "../../../sidecar/types.js";

const TOKEN = "test-token-0123456789abcdef";

/**
 * A stand-in for the cluster behind the API: real runner, state and alerts, nodes that are never
 * contacted, and a sync that blocks until released so that conflicts can be seen.
 */
class FakeCluster implements ClusterService {
  release: () => void = () => {};
  constructor(
    private readonly runner: OperationRunner,
    private readonly state: StateStore,
    private readonly alerts: Alerts,
    private readonly bus: EventBus,
  ) {}
  info(): ClusterInfo {
    return {
      instance_id: "instance-1",
      name: "zigbee2mqtt-ha",
      cluster_name: "test",
      version: "0",
      api_version: 1,
      nodes: ["node1", "node2"],
    };
  }
  status(): ClusterStatus {
    const s = this.state.get();
    return {
      cluster_name: "test",
      active: s.active,
      protection: { protected: false, ready: [], reason: "not protected: no active node is known" },
      automation: s.automation,
      bridge: { broker_connected: false, state: "unknown", publishing_node: null },
      nodes: [],
      last_sync: null,
      last_switchover: null,
      last_nvram_snapshot: null,
      fenced: {},
      running_operation: this.runner.running ?? null,
      alerts: this.alerts.list(),
    };
  }
  node(id: string): NodeDetail {
    throw new NotFoundError(`no node "${id}"`);
  }
  switchover(): OperationRecord {
    throw new PreconditionError("no standby is ready");
  }
  failover(): OperationRecord {
    throw new PreconditionError("no standby is ready");
  }
  sync(trigger: string): OperationRecord {
    return this.runner.start({
      kind: "sync",
      mutating: true,
      trigger,
      params: {},
      ctx: {},
      steps: [
        {
          key: "wait",
          name: "wait",
          timeoutMs: 10_000,
          run: () => new Promise<void>((r) => (this.release = r)),
        },
      ],
    });
  }
  check(trigger: string): OperationRecord {
    return this.runner.start({ kind: "check", mutating: false, trigger, params: {}, ctx: {}, steps: [] });
  }
  operations(limit: number): OperationRecord[] {
    return this.runner.list().slice(0, limit);
  }
  operation(id: string): OperationRecord {
    const op = this.runner.get(id);
    if (!op) throw new NotFoundError(`no operation "${id}"`);
    return op;
  }
  setAutomation(patch: Partial<AutomationState>, trigger: string): AutomationState {
    const state = this.state.update((s) => Object.assign(s.automation, patch));
    this.runner.record("decision", trigger, "succeeded", { automation: patch });
    this.bus.publish({ type: "state.changed", state });
    return state.automation;
  }
  snapshots(): SnapshotInfo[] {
    return [];
  }
  restoreSnapshot(id: string): OperationRecord {
    throw new NotFoundError(`no data snapshot "${id}"`);
  }
  stopNode(id: string): OperationRecord {
    if (id === "node1") throw new PreconditionError("node1 is the active node");
    throw new NotFoundError(`no node "${id}"`);
  }
}

let app: FastifyInstance;
let cluster: FakeCluster;
let bus: EventBus;

beforeEach(async () => {
  const dir = mkdtempSync(join(tmpdir(), "z2mha-api-"));
  bus = new EventBus();
  const runner = new OperationRunner(Journal.open(join(dir, "journal.jsonl")), bus);
  cluster = new FakeCluster(runner, new StateStore(dir), new Alerts(bus), bus);
  app = await buildApp({
    cluster,
    bus,
    registry: createRegistry(),
    token: TOKEN,
    version: "0.0.0-test",
    logger: false,
  });
});

afterEach(async () => {
  cluster.release();
  await app.close();
});

const auth = { authorization: `Bearer ${TOKEN}` };

describe("authentication", () => {
  it("401 without a token, with a wrong one, with a malformed header; 200 with the right one", async () => {
    const none = await app.inject({ method: "GET", url: "/api/v1/info" });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toEqual({ error: { code: "unauthorized", message: "missing bearer token" } });
    expect(none.headers["www-authenticate"]).toMatch(/^Bearer/);
    const wrong = await app.inject({
      method: "GET",
      url: "/api/v1/info",
      headers: { authorization: "Bearer nope" },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.message).toBe("invalid token");
    const prefix = await app.inject({
      method: "GET",
      url: "/api/v1/info",
      headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
    });
    expect(prefix.statusCode).toBe(401);
    const basic = await app.inject({
      method: "GET",
      url: "/api/v1/info",
      headers: { authorization: `Basic ${TOKEN}` },
    });
    expect(basic.statusCode).toBe(401);
    const right = await app.inject({ method: "GET", url: "/api/v1/info", headers: auth });
    expect(right.statusCode).toBe(200);
    expect(right.json()).toMatchObject({
      instance_id: "instance-1",
      nodes: ["node1", "node2"],
      api_version: 1,
    });
  });

  it("every state-bearing route needs the token; /healthz does not", async () => {
    for (const [method, url] of [
      ["GET", "/api/v1/status"],
      ["GET", "/api/v1/nodes/node1"],
      ["POST", "/api/v1/switchover"],
      ["POST", "/api/v1/failover"],
      ["POST", "/api/v1/sync"],
      ["POST", "/api/v1/check"],
      ["GET", "/api/v1/operations"],
      ["PUT", "/api/v1/automation"],
      ["GET", "/api/v1/snapshots"],
      ["GET", "/api/v1/events"],
      ["GET", "/metrics"],
      ["GET", "/api/v1/nonexistent"],
    ] as const) {
      const res = await app.inject({ method, url });
      expect([method, url, res.statusCode]).toEqual([method, url, 401]);
    }
    expect((await app.inject({ method: "GET", url: "/healthz" })).json()).toEqual({ status: "ok" });
  });
});

describe("OpenAPI", () => {
  it("/openapi.json is a valid OpenAPI 3.1 document covering the v1 routes", async () => {
    const res = await app.inject({ method: "GET", url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    const validated = await SwaggerParser.validate(structuredClone(doc));
    expect((validated as { openapi?: string }).openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/api/v1/automation",
        "/api/v1/check",
        "/api/v1/events",
        "/api/v1/failover",
        "/api/v1/info",
        "/api/v1/nodes/{id}",
        "/api/v1/nodes/{id}/stop",
        "/api/v1/operations",
        "/api/v1/operations/{id}",
        "/api/v1/snapshots",
        "/api/v1/snapshots/{id}/restore",
        "/api/v1/status",
        "/api/v1/switchover",
        "/api/v1/sync",
        "/healthz",
        "/metrics",
      ].sort(),
    );
    expect(doc.components.securitySchemes.bearer).toEqual({ type: "http", scheme: "bearer" });
    // Every status a route can answer is documented (schemathesis checks the same from outside).
    expect(Object.keys(doc.paths["/api/v1/switchover"].post.responses).sort()).toEqual(
      ["202", "400", "401", "404", "409", "413", "415", "422", "503", "507"].sort(),
    );
    expect(Object.keys(doc.paths["/metrics"].get.responses)).toContain("401");
    expect(Object.keys(doc.paths["/api/v1/events"].get.responses).sort()).toEqual(["200", "401", "503"]);
  });

  it("serves the interactive UI at /docs", async () => {
    const res = await app.inject({ method: "GET", url: "/docs/" });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("swagger-ui");
  });
});

describe("errors share one shape", () => {
  it("bad bodies get 400 with the zod path", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/v1/switchover",
      headers: auth,
      payload: { target: "Node One", extra: true },
    });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error.code).toBe("bad_request");
    expect(body.error.details.issues).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: "target" })]),
    );
    expect(body.error.message).toMatch(/body\.target: /);
    const patch = await app.inject({
      method: "PUT",
      url: "/api/v1/automation",
      headers: auth,
      payload: { maintenance: "yes" },
    });
    expect(patch.statusCode).toBe(400);
    expect(patch.json().error.details.issues[0].path).toBe("maintenance");
    const query = await app.inject({ method: "GET", url: "/api/v1/operations?limit=0", headers: auth });
    expect(query.statusCode).toBe(400);
    expect(query.json().error.message).toMatch(/^querystring\.limit: /);
  });

  it("unknown node or operation: 404", async () => {
    const node = await app.inject({ method: "GET", url: "/api/v1/nodes/node9", headers: auth });
    expect(node.statusCode).toBe(404);
    expect(node.json()).toEqual({ error: { code: "not_found", message: 'no node "node9"' } });
    const op = await app.inject({ method: "GET", url: "/api/v1/operations/op-nope", headers: auth });
    expect(op.statusCode).toBe(404);
  });

  it("stopping the active node is refused (422); an unknown node is 404", async () => {
    const active = await app.inject({ method: "POST", url: "/api/v1/nodes/node1/stop", headers: auth });
    expect(active.statusCode).toBe(422);
    const unknown = await app.inject({ method: "POST", url: "/api/v1/nodes/node9/stop", headers: auth });
    expect(unknown.statusCode).toBe(404);
  });

  it("a known path with another method is 405 with Allow; a malformed URL keeps the error shape", async () => {
    const res = await app.inject({ method: "DELETE", url: "/api/v1/status", headers: auth });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toMatch(/GET/);
    expect(res.json().error.code).toBe("method_not_allowed");
    const bad = await app.inject({ method: "GET", url: "/api/v1/operations/%ff", headers: auth });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: { code: "bad_request", message: expect.any(String) } });
  });

  it("a second mutating operation gets 409 with the running one's id", async () => {
    const first = await app.inject({ method: "POST", url: "/api/v1/sync", headers: auth, payload: {} });
    expect(first.statusCode).toBe(202);
    const running = first.json();
    const second = await app.inject({ method: "POST", url: "/api/v1/sync", headers: auth, payload: {} });
    expect(second.statusCode).toBe(409);
    expect(second.json().error).toMatchObject({
      code: "operation_running",
      details: { operation_id: running.id },
    });
    const status = await app.inject({ method: "GET", url: "/api/v1/status", headers: auth });
    expect(status.json().running_operation.id).toBe(running.id);
  });
});

describe("automation and history", () => {
  it("maintenance mode is persisted, reported in status and recorded in the history", async () => {
    const res = await app.inject({
      method: "PUT",
      url: "/api/v1/automation",
      headers: auth,
      payload: { maintenance: true },
    });
    expect(res.json()).toEqual({ automatic_failover: true, maintenance: true });
    expect(
      (await app.inject({ method: "GET", url: "/api/v1/status", headers: auth })).json().automation
        .maintenance,
    ).toBe(true);
    const ops = (await app.inject({ method: "GET", url: "/api/v1/operations", headers: auth })).json()
      .operations;
    expect(ops[0]).toMatchObject({ kind: "decision", status: "succeeded", trigger: "api" });
  });
});

describe("metrics", () => {
  it("Prometheus text with the token", async () => {
    const res = await app.inject({ method: "GET", url: "/metrics", headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    expect(res.body).toContain("z2mha_process_");
  });
});

describe("event stream", () => {
  it("delivers bus events as SSE and replays what a reconnecting client missed", async () => {
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const received = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        { host: "127.0.0.1", port, path: "/api/v1/events", headers: { ...auth, "last-event-id": "0" } },
        (res) => {
          expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
          let text = "";
          res.on("data", (chunk) => {
            text += chunk;
            if (text.includes("event: alert.raised")) {
              req.destroy();
              resolve(text);
            }
          });
        },
      );
      req.on("error", (e) => (e.message.includes("aborted") ? undefined : reject(e)));
      req.end();
      setTimeout(
        () => new Alerts(bus).raise("split_brain", "critical", "two nodes run zigbee2mqtt", "node2"),
        100,
      );
    });
    expect(received).toMatch(/id: 1\nevent: alert\.raised\ndata: \{.*"kind":"split_brain".*\}\n\n/);
  });
});

describe("bodies clients leave out", () => {
  it("POST without a body, or with an empty JSON body, counts as {}", async () => {
    const none = await app.inject({ method: "POST", url: "/api/v1/sync", headers: auth });
    expect(none.statusCode).toBe(202);
    cluster.release();
    await new Promise((r) => setTimeout(r, 20));
    const empty = await app.inject({
      method: "POST",
      url: "/api/v1/sync",
      headers: { ...auth, "content-type": "application/json" },
      payload: "",
    });
    expect(empty.statusCode).toBe(202);
    const broken = await app.inject({
      method: "POST",
      url: "/api/v1/switchover",
      headers: { ...auth, "content-type": "application/json" },
      payload: "{nope",
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().error.code).toBe("bad_request");
  });
});

describe("event ids across restarts", () => {
  it("a Last-Event-ID newer than anything this process sent asks the client to resync", () => {
    bus.publish({ type: "alert.cleared", alert: { kind: "split_brain", at: new Date().toISOString() } });
    expect(bus.since(0)?.length).toBe(1);
    expect(bus.since(1)).toEqual([]);
    expect(bus.since(4711)).toBeUndefined();
  });
});
