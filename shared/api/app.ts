/**
 * @module api/app — the `api` edge function: a Hono app mounted under /api (Supabase hands a
 * function the path after /functions/v1), with JWT verification, JSON errors and the OpenAPI
 * document.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "../errors.ts";
import { errorResponse } from "../http_errors.ts";
import type { ApiDeps, ApiEnv } from "./context.ts";
import { registerDeliveryRoutes } from "./delivery_routes.ts";
import { responseForError } from "./errors.ts";
import { registerMiscRoutes } from "./misc_routes.ts";
import { registerStreamRoutes } from "./stream_routes.ts";
import { registerTagRoutes } from "./tag_routes.ts";
import { registerTaskRoutes } from "./task_routes.ts";

/** Paths that need no JWT, as on Supabase with verify_jwt for everything else. */
const PUBLIC_PATHS = new Set(["/api/health", "/api/openapi.json"]);

/** Largest JSON body accepted (a batch of 100 tasks fits). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** A client's X-Request-Id is kept only when it is this short and plain (it goes into logs). */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id: the client's X-Request-Id when it is plain, else a new UUID. */
export function requestIdOf(req: Request): string {
  const sent = req.headers.get("x-request-id");
  return sent && CLIENT_REQUEST_ID.test(sent) ? sent : crypto.randomUUID();
}

/** Builds the api app. `app.fetch` is the function's handler. */
export function createApiApp(deps: ApiDeps): OpenAPIHono<ApiEnv> {
  const app = new OpenAPIHono<ApiEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      const issue = result.error.issues[0];
      const field = issue.path.join(".");
      return errorResponse(
        400,
        "invalid_request",
        field ? `${field}: ${issue.message}` : issue.message,
      );
    },
  }).basePath("/api");

  app.onError((err, c) => responseForError(err, new URL(c.req.url).pathname, c.get("log")));
  app.notFound((c) =>
    errorResponse(404, "not_found", `No route ${c.req.method} ${new URL(c.req.url).pathname}`)
  );

  // First, so that every later log line of the request, and every answer (errors included: they
  // are made below this middleware), carries the request id.
  app.use("*", async (c, next) => {
    const requestId = requestIdOf(c.req.raw);
    c.set("log", deps.log.child({ requestId }));
    await next();
    c.res.headers.set("x-request-id", requestId);
  });
  app.use("*", async (c, next) => {
    const path = new URL(c.req.url).pathname.replace(/\/+$/, "");
    if (!PUBLIC_PATHS.has(path) && c.req.method !== "OPTIONS") {
      c.set("caller", await deps.verifier.callerOf(c.req.raw));
    }
    if (c.req.method === "POST" && path.startsWith("/api/tasks")) {
      const type = c.req.header("content-type") ?? "";
      const hasBody = c.req.header("content-length") !== "0" && c.req.raw.body !== null;
      if (
        hasBody && !/^application\/(.+\+)?json\b/i.test(type) && !/\/(retry|cancel)$/.test(path)
      ) {
        throw new ApiError(415, "unsupported_media_type", "Body must be application/json");
      }
    }
    await next();
  });
  app.use(
    "/tasks/*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () =>
        errorResponse(413, "payload_too_large", `Body is over ${MAX_BODY_BYTES} bytes`),
    }),
  );
  app.use(
    "/tasks",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () =>
        errorResponse(413, "payload_too_large", `Body is over ${MAX_BODY_BYTES} bytes`),
    }),
  );

  registerTaskRoutes(app, deps);
  registerStreamRoutes(app, deps);
  registerTagRoutes(app, deps);
  registerDeliveryRoutes(app, deps);
  registerMiscRoutes(app, deps);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
  });
  app.doc("/openapi.json", {
    openapi: "3.0.0",
    info: {
      title: "Darkroom API",
      version: "1.0.0",
      description: "Image ingestion and analysis on Supabase",
    },
    servers: [{ url: "/functions/v1" }],
    security: [{ bearer: [] }],
  });
  return app;
}
