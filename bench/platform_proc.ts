/**
 * @module bench/platform_proc — the platform process the benchmark measures: `startPlatform` from
 * the environment exactly as `deno task start` (local/main.ts) runs it, plus two things for the
 * bench only:
 *
 * - the statements and transactions the platform sends are counted in the Db layer (the
 *   prototypes of PostgresDb and PGliteDb are wrapped: nothing they do changes);
 * - a control server on another loopback port, for what the bench cannot do from outside on
 *   PGlite (one process owns that database): run a query, run the raw pgmq ceiling on the
 *   platform's own pool, stop the scheduler, invoke a worker and measure that invocation.
 *
 * It prints one line `BENCH_READY {json}` once both listen, and stops gracefully on SIGTERM.
 */
import process from "node:process";
import { loadConfig } from "../shared/config.ts";
import { PostgresDb, type Queryable } from "../shared/db.ts";
import { PGliteDb } from "../local/pglite_db.ts";
import { startPlatform } from "../local/platform.ts";
import { type RawPgmqOptions, runRawPgmq } from "./raw_pgmq.ts";
import { procStats } from "./proc.ts";

/** Statements and transactions the platform sent. */
const counters = { statements: 0, transactions: 0, scripts: 0 };
/** Statements by their text (whitespace folded, cut at 100 characters). */
const byText = new Map<string, number>();
function countText(text: string) {
  const key = text.replace(/\s+/g, " ").trim().slice(0, 100);
  byText.set(key, (byText.get(key) ?? 0) + 1);
}

type Proto = {
  query(text: string, params?: unknown[]): Promise<unknown[]>;
  exec(script: string): Promise<void>;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
};

/** The unwrapped query of each engine: the control server's own statements are not counted. */
const raw = new Map<object, Proto["query"]>();

function instrument(proto: Proto): void {
  const query = proto.query;
  const exec = proto.exec;
  const transaction = proto.transaction;
  raw.set(proto, query);
  proto.query = function (this: Proto, text: string, params?: unknown[]) {
    counters.statements++;
    counters.transactions++; // autocommit: one statement, one transaction
    countText(text);
    return query.call(this, text, params);
  };
  proto.exec = function (this: Proto, script: string) {
    counters.scripts++;
    return exec.call(this, script);
  };
  proto.transaction = function <T>(this: Proto, fn: (tx: Queryable) => Promise<T>) {
    counters.transactions++;
    return transaction.call(this, (tx: Queryable) =>
      fn({
        query<R>(text: string, params?: unknown[]) {
          counters.statements++;
          countText(text);
          return tx.query<R>(text, params);
        },
      })) as Promise<T>;
  };
}
instrument(PostgresDb.prototype as unknown as Proto);
instrument(PGliteDb.prototype as unknown as Proto);

const config = loadConfig();
const platform = await startPlatform(config);
const db = platform.db;
const rawQuery = (text: string, params: unknown[] = []) =>
  raw.get(Object.getPrototypeOf(db))!.call(db as unknown as Proto, text, params);
/** The same pool, uncounted: for the raw pgmq ceiling, which is not the platform's work. */
const uncounted: Queryable = {
  query: <T>(text: string, params?: unknown[]) => rawQuery(text, params) as Promise<T[]>,
};

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await control.shutdown();
  await platform.stop();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);

const control = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
  const path = new URL(req.url).pathname;
  try {
    const body = req.method === "POST" ? await req.json() : {};
    switch (path) {
      case "/counters":
        return Response.json({ ...counters, ...(await procStats(Deno.pid)) });
      case "/statements":
        return Response.json(Object.fromEntries(byText));
      case "/query":
        return Response.json(await rawQuery(body.sql, body.params ?? []));
      case "/raw-pgmq":
        return Response.json(await runRawPgmq(uncounted, body as RawPgmqOptions));
      case "/scheduler/stop":
        await platform.scheduler.stop();
        return Response.json({ ok: true });
      case "/invoke": {
        // One worker invocation as pg_net makes it, measured in this process while nothing
        // else runs here (the scheduler is stopped first).
        const before = process.cpuUsage(); // getrusage: every thread of the process, in µs
        const heapBefore = Deno.memoryUsage().heapUsed;
        const started = performance.now();
        const res = await fetch(`${platform.url}/functions/v1/${body.worker}`, {
          method: "POST",
          headers: { authorization: `Bearer ${platform.serviceRoleKey}` },
        });
        const summary = await res.json();
        const wallMs = performance.now() - started;
        const used = process.cpuUsage(before);
        const after = await procStats(Deno.pid);
        return Response.json({
          status: res.status,
          summary,
          wallMs,
          cpuMs: (used.user + used.system) / 1000,
          rssMb: after.rssMb,
          heapGrowthMb: (Deno.memoryUsage().heapUsed - heapBefore) / 2 ** 20,
        });
      }
      case "/stop":
        setTimeout(stop, 10);
        return Response.json({ ok: true });
    }
    return Response.json({ error: "not found" }, { status: 404 });
  } catch (err) {
    return Response.json({ error: String((err as Error)?.message ?? err) }, { status: 500 });
  }
});

console.log(
  `BENCH_READY ${
    JSON.stringify({
      url: platform.url,
      control: `http://127.0.0.1:${control.addr.port}`,
      serviceRoleKey: platform.serviceRoleKey,
      pgmq: platform.bootstrap.pgmq,
      pid: Deno.pid,
    })
  }`,
);
