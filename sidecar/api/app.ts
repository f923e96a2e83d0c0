import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { ClusterService } from "../cluster/service.js";
import type { EventBus } from "../notify/bus.js";
import { registerAuth } from "./plugins/auth.js";
import { registerErrorHandling } from "./plugins/errors.js";
import { registerOpenApi } from "./plugins/openapi.js";
import { automationRoutes } from "./routes/automation.js";
import { clusterRoutes } from "./routes/cluster.js";
import { eventRoutes } from "./routes/events.js";
import { operationRoutes } from "./routes/operations.js";
import { serviceRoutes } from "./routes/service.js";
import { snapshotRoutes } from "./routes/snapshots.js";

export interface HttpServerOptions {
  /** HTTPS with this certificate; plain HTTP without. */
  tls?: { cert: string; key: string };
  /** Headers and body must arrive within this; a slow client is cut off (the socket closed). */
  requestTimeoutMs: number;
  /** A connection with no traffic either way is closed after this. */
  idleTimeoutMs: number;
  /** Connections beyond this are closed at once. */
  maxConnections: number;
}

export interface AppOptions {
  cluster: ClusterService;
  bus: EventBus;
  registry: Registry;
  token: string;
  version: string;
  logger?: Logger | false;
  /** Limits of the real server; tests through `app.inject` leave them out. */
  http?: HttpServerOptions;
  maxEventClients?: number;
}

/**
 * The Node server under Fastify, with the limits that keep one client from exhausting the
 * sidecar: Node's requestTimeout is only enforced when its connection check runs, every 30 s by
 * default, so the check runs every second here.
 */
function serverFactory(options: HttpServerOptions) {
  return (handler: Parameters<typeof createHttpServer>[1]): Server => {
    const common = {
      requestTimeout: options.requestTimeoutMs,
      headersTimeout: options.requestTimeoutMs,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: 1_000,
    };
    const server = options.tls
      ? createHttpsServer({ ...common, cert: options.tls.cert, key: options.tls.key }, handler)
      : createHttpServer(common, handler);
    server.maxConnections = options.maxConnections;
    server.setTimeout(options.idleTimeoutMs, (socket) => socket.destroy());
    return server as Server;
  };
}

/** The whole HTTP surface, used alike by the server entry point and by tests (`app.inject`). */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger and Fastify's logger type differ only in typing details.
    loggerInstance: (options.logger || undefined) as FastifyBaseLogger | undefined,
    bodyLimit: 64 * 1024,
    ...(options.http ? { serverFactory: serverFactory(options.http) } : {}),
    // Errors Fastify raises before routing (a malformed URL such as %ff) get our error shape too.
    frameworkErrors: (error, _request, reply) => {
      (reply as unknown as { code(n: number): { send(body: unknown): void } })
        .code(400)
        .send({ error: { code: "bad_request", message: error.message } });
    },
  }).withTypeProvider<ZodTypeProvider>() as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // An empty body with a JSON content type is "no body", as most clients mean it, not an error.
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === "") return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(Object.assign(error as Error, { statusCode: 400 }), undefined);
    }
  });
  registerErrorHandling(app);
  registerAuth(app, options.token);
  await registerOpenApi(app, options.version);

  await app.register(serviceRoutes, { registry: options.registry });
  await app.register(clusterRoutes, { cluster: options.cluster });
  await app.register(operationRoutes, { cluster: options.cluster });
  await app.register(automationRoutes, { cluster: options.cluster });
  await app.register(snapshotRoutes, { cluster: options.cluster });
  await app.register(eventRoutes, { bus: options.bus, maxClients: options.maxEventClients ?? 16 });
  await app.ready();
  return app;
}
