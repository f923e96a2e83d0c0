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

export interface AppOptions {
  cluster: ClusterService;
  bus: EventBus;
  registry: Registry;
  token: string;
  version: string;
  logger?: Logger | false;
}

/** The whole HTTP surface, used alike by the server entry point and by tests (`app.inject`). */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger and Fastify's logger type differ only in typing details.
    loggerInstance: (options.logger || undefined) as FastifyBaseLogger | undefined,
    bodyLimit: 64 * 1024,
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
  await app.register(eventRoutes, { bus: options.bus });
  await app.ready();
  return app;
}
