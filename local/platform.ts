/**
 * @module platform — one process standing in for Supabase: Postgres (embedded PGlite under
 * DATA_DIR, or DATABASE_URL), the stand-ins and migrations, the function host on PORT, a
 * scheduler in place of pg_cron + pg_net (it also wakes the next stage's worker at once), a
 * filesystem blob store, a Realtime stand-in (postgres_changes over WebSocket, row level
 * security applied) and a pool of Web Workers for the stages' CPU-heavy work, which would
 * otherwise stall all of it.
 */
import { JwtVerifier } from "../shared/auth.ts";
import type { Config } from "../shared/config.ts";
import { type Db, PostgresDb } from "../shared/db.ts";
import { createAllFunctions, type FunctionDeps } from "../shared/functions.ts";
import { errorResponse } from "../shared/http_errors.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { createProvider, createStore } from "../shared/providers.ts";
import { readWorkerQueues } from "../shared/stages.ts";
import { bootstrapDatabase, type BootstrapReport } from "./bootstrap.ts";
import { ComputePool } from "./compute/pool.ts";
import { createFunctionHost } from "./function_host.ts";
import { dashboardRoute } from "./dashboard_route.ts";
import { createDevAuth, type DevAuth } from "./dev_auth.ts";
import { platformApiKeys, platformKey } from "./keys.ts";
import { PGliteDb } from "./pglite_db.ts";
import { Scheduler } from "./scheduler.ts";
import { createRealtime, type Realtime } from "./realtime/server.ts";
import { storageRoute } from "./storage_route.ts";

/** A running platform. */
export interface Platform {
  /** Base URL, e.g. http://127.0.0.1:54321 */
  url: string;
  /** The legacy anon key (a JWT). */
  anonKey: string;
  /** The legacy service_role key (a JWT). */
  serviceRoleKey: string;
  /** `sb_publishable_…`, acting as anon. */
  publishableKey: string;
  /** `sb_secret_…`, acting as service_role. */
  secretKey: string;
  db: Db;
  bootstrap: BootstrapReport;
  scheduler: Scheduler;
  /** The Realtime stand-in at /realtime/v1/websocket. */
  realtime: Realtime;
  /** The development sign-in at /auth/v1 (supabase-js `auth.*`); never deployed. */
  devAuth: DevAuth;
  deps: FunctionDeps;
  /** Runs metadata extraction and local analysis off the event loop serving HTTP. */
  compute: ComputePool;
  /**
   * Stops gracefully: the workers read nothing more and give back the messages they have not
   * started; jobs in flight get STOP_TIMEOUT_MS to finish, then their messages are given back too.
   * Then the server, the compute pool and the database, in that order.
   */
  stop(): Promise<void>;
}

/** Options of {@linkcode startPlatform}. */
export interface PlatformOptions {
  log?: Logger;
  /** Host to listen on. Default 127.0.0.1. */
  hostname?: string;
  /** Scheduler idle poll in ms. Default 200. */
  idlePollMs?: number;
  /** fetch used by the download worker (tests). */
  fetch?: typeof fetch;
}

/** Starts everything; resolves once the server listens. */
export async function startPlatform(config: Config, opts: PlatformOptions = {}): Promise<Platform> {
  const log = opts.log ?? createLogger(config.LOG_LEVEL);
  const db: Db = config.databaseUrl
    ? new PostgresDb(config.databaseUrl, { max: 10 })
    : await PGliteDb.open(`${config.DATA_DIR}/pgdata`);
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  let scheduler: Scheduler | undefined;
  let realtime: Realtime | undefined;
  // Here the api, the workers and Realtime share one event loop: synchronous decoding of a
  // crafted image must not run on it.
  const compute = new ComputePool({
    size: config.COMPUTE_WORKERS,
    deadlineMs: config.COMPUTE_DEADLINE_MS,
  });
  try {
    const bootstrap = await bootstrapDatabase(db);
    const anonKey = await platformKey("anon", config.JWT_SECRET);
    const serviceRoleKey = await platformKey("service_role", config.JWT_SECRET);
    const { publishableKey, secretKey } = await platformApiKeys(config.JWT_SECRET);
    const verifier = new JwtVerifier({
      secret: config.JWT_SECRET,
      apiKeys: { publishable: [publishableKey], secret: [secretKey] },
    });
    realtime = createRealtime({ db, verifier, log });
    await realtime.installSql();
    const eventsSignal = new EventTarget();
    const shutdown = new AbortController();
    // The registry decides which workers run: the stages' chain (each wakes the next; the first
    // is woken when the api queued work) and the event subscribers', woken whenever events may
    // have been written (the fan-out trigger filled their queues in the same transaction).
    const registry = await readWorkerQueues(db);
    const chain = registry.filter((w) => w.kind === "stage");
    const subscribers = registry.filter((w) => w.kind === "subscriber").map((w) => w.worker);
    const firstWorker = chain[0]?.worker;
    const notifyEvents = (worker?: string) => {
      eventsSignal.dispatchEvent(new Event("events"));
      realtime?.wake();
      // A subscriber's own progress writes no event: it need not wake the others.
      if (subscribers.length > 0 && !subscribers.includes(worker ?? "")) {
        scheduler?.wake(...subscribers);
      }
    };

    // Listen first: the port (PORT=0 picks one) goes into signed URLs.
    const ref: { host?: (req: Request, remoteAddress?: string) => Promise<Response> } = {};
    const hostname = opts.hostname ?? "127.0.0.1";
    server = Deno.serve(
      {
        port: config.PORT,
        hostname,
        onListen: () => {},
        onError: (err) => {
          log.error("request failed", { err });
          return errorResponse(500, "internal", "Internal error");
        },
      },
      (req, info) =>
        ref.host
          ? ref.host(req, info.remoteAddr.hostname)
          : Promise.resolve(errorResponse(503, "unavailable", "Starting")),
    );
    const baseUrl = `http://${hostname}:${server.addr.port}`;

    const store = createStore(config, { publicBaseUrl: baseUrl });
    await Deno.mkdir(config.DATA_DIR, { recursive: true });
    const devAuth = await createDevAuth({
      jwtSecret: config.JWT_SECRET,
      url: baseUrl,
      verifier,
      file: `${config.DATA_DIR}/dev_auth.json`,
    });
    const deps: FunctionDeps = {
      config,
      db,
      store,
      provider: createProvider(config),
      verifier,
      log,
      fetch: opts.fetch,
      eventsSignal,
      shutdownSignal: shutdown.signal,
      stopSignal: shutdown.signal,
      compute,
      onQueued: () => {
        notifyEvents();
        if (firstWorker) scheduler?.wake(firstWorker);
      },
    };
    const functions = createAllFunctions(deps);
    scheduler = new Scheduler({
      serviceRoleKey,
      log,
      idlePollMs: opts.idlePollMs,
      onProgress: notifyEvents,
      workers: registry.map((w) => {
        const handler = functions[w.worker];
        if (!handler) throw new Error(`The registry names ${w.worker}, which has no function`);
        const next = w.kind === "stage" ? chain[chain.indexOf(w) + 1] : undefined;
        return {
          name: w.worker,
          handler,
          wakes: next ? [next.worker] : [],
          concurrency: w.kind === "stage" ? config.WORKER_CONCURRENCY : 1,
          // Woken after every stage batch: gather ~100 ms of events into one batch.
          wakeDelayMs: w.kind === "subscriber" ? 100 : 0,
        };
      }),
    });
    ref.host = createFunctionHost(functions, [
      storageRoute(store, config),
      realtime.route,
      devAuth.route,
      dashboardRoute({ defaultKey: anonKey }),
    ]);
    scheduler.start();

    const platform: Platform = {
      url: baseUrl,
      anonKey,
      serviceRoleKey,
      publishableKey,
      secretKey,
      db,
      bootstrap,
      scheduler,
      deps,
      realtime,
      devAuth,
      compute,
      async stop() {
        // Open WebSockets and event streams would keep the server's shutdown waiting: end them.
        // The same signal tells the workers to stop (stage_runner.ts, subscriber_runner.ts).
        shutdown.abort();
        // The scheduler starts nothing new once told to stop; the batches in flight end within
        // STOP_TIMEOUT_MS (finished, or their messages given back).
        const stopping = scheduler?.stop();
        await realtime?.close();
        await server?.shutdown();
        await stopping;
        compute.stop();
        await db.close();
      },
    };
    return platform;
  } catch (err) {
    await realtime?.close();
    await server?.shutdown();
    const stopping = scheduler?.stop();
    compute.stop();
    await stopping;
    await db.close();
    throw err;
  }
}
