import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { jsonSchemaTransform, jsonSchemaTransformObject } from "fastify-type-provider-zod";

/** OpenAPI 3.1 generated from the routes' zod schemas; served at /openapi.json, browsable at /docs. */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "zigbee2mqtt-ha sidecar API",
        version,
        description:
          "Active/standby high availability for zigbee2mqtt. Every route except /healthz, /openapi.json and /docs " +
          "needs `Authorization: Bearer <token>`; the token is in the sidecar's state dir (file `token`) unless configured.",
      },
      components: {
        securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: "cluster", description: "State of the cluster and its nodes" },
        { name: "operations", description: "Switchover, failover, sync, checks and their history" },
        { name: "automation", description: "Automatic failover and maintenance mode" },
        { name: "snapshots", description: "Data-dir and coordinator NVRAM snapshots kept by the controller" },
        { name: "events", description: "Server-Sent Events" },
        { name: "service", description: "Liveness and metrics" },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: (input) => optionalBodies(jsonSchemaTransformObject(input)),
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}

type Doc = ReturnType<typeof jsonSchemaTransformObject>;

/**
 * @fastify/swagger marks every request body required, but a body our routes accept as `null` or
 * absent (optionalBody) is optional: say so, or clients (and fuzzers) are told a lie.
 */
function optionalBodies(doc: Doc): Doc {
  const paths = (doc as { paths?: Record<string, Record<string, { requestBody?: BodyDoc }>> }).paths ?? {};
  for (const methods of Object.values(paths)) {
    for (const operation of Object.values(methods)) {
      const body = operation.requestBody;
      const schema = body?.content?.["application/json"]?.schema;
      if (body && schema?.anyOf?.some((s) => s.type === "null")) body.required = false;
    }
  }
  return doc;
}

interface BodyDoc {
  required?: boolean;
  content?: Record<string, { schema?: { anyOf?: { type?: string }[] } }>;
}
