/**
 * @module realtime/server — a local stand-in for Supabase Realtime, served at
 * /realtime/v1/websocket to the real realtime-js client: `postgres_changes` of the logged tables
 * (local/sql/realtime_changes.sql) reach each subscriber only when row level security lets the
 * subscriber's JWT select the row; Broadcast from the database (`realtime.send`, see
 * local/sql/realtime_stand_in.sql) reaches the channels of its topic, private channels once the
 * realtime.messages policies let the subscriber read the topic.
 *
 * @example
 * const realtime = createRealtime({ db, verifier, log });
 * await realtime.installSql();
 * const host = createFunctionHost(functions, [realtime.route]);
 * // after worker progress:
 * realtime.wake();
 */
import type { JwtVerifier } from "../../shared/auth.ts";
import type { Db } from "../../shared/db.ts";
import { errorResponse } from "../../shared/http_errors.ts";
import type { Logger } from "../../shared/log.ts";
import { type Catalog, loadCatalog } from "./catalog.ts";
import {
  currentSnapshot,
  type Cursor,
  cursorFor,
  keepLogging,
  LISTEN_LEASE_SECONDS,
  pruneChanges,
  readChanges,
} from "./change_log.ts";
import type { Channel } from "./channel.ts";
import { Connection } from "./connection.ts";
import { planDeliveries } from "./delivery.ts";
import {
  hasMessageLog,
  mayReadTopic,
  pruneMessages,
  readMessages,
  relayMessages,
} from "./broadcast.ts";
import { Poller } from "./poller.ts";
import { vsnOf } from "./protocol.ts";
import { checkToken, expired } from "./token.ts";

/** The WebSocket path realtime-js connects to (`<url>/realtime/v1` + `/websocket`). */
export const REALTIME_PATH = "/realtime/v1/websocket";

const PAGE = 500;
const MAX_PAGES_PER_POLL = 20;
const PRUNE_EVERY_MS = 60_000;
const SQL_FILE = new URL("../sql/realtime_changes.sql", import.meta.url);

/** Options of {@linkcode createRealtime}. */
export interface RealtimeOptions {
  db: Db;
  verifier: JwtVerifier;
  log: Logger;
  /** How often to read new changes while someone listens, in ms. Default 100. */
  pollMs?: number;
}

/** A running Realtime stand-in. */
export interface Realtime {
  /** The route for the function host: answers the WebSocket upgrade, else null. */
  route: (req: Request, url: URL) => Promise<Response | null> | Response | null;
  /** Reads new changes now (call after worker progress). */
  wake(): void;
  /** Closes every socket and stops polling. */
  close(): Promise<void>;
  /** Installs (idempotently) the change log and its triggers on `db` (after the migrations). */
  installSql: () => Promise<void>;
}

/** Creates the Realtime stand-in; call `installSql()` once before clients subscribe. */
export function createRealtime(opts: RealtimeOptions): Realtime {
  const { db, verifier, log } = opts;
  const connections = new Set<Connection>();
  let catalog: Promise<Catalog> | null = null;
  let changesCursor: Cursor | null = null;
  let messagesCursor: Cursor | null = null;
  let messageLog: Promise<boolean> | null = null;
  let lastPrune = 0;
  /** When the logging lease was last renewed (Date.now()). */
  let lastLease = 0;
  let pruning: Promise<void> = Promise.resolve();
  let closed = false;

  const getCatalog = (): Promise<Catalog> =>
    catalog ??= loadCatalog(db).catch((err) => {
      catalog = null;
      throw err;
    });
  const getMessageLog = (): Promise<boolean> =>
    messageLog ??= hasMessageLog(db).catch((err) => {
      messageLog = null;
      throw err;
    });
  const joined = (): Channel[] => [...connections].flatMap((c) => [...c.channels.values()]);
  const listening = (): Channel[] => joined().filter((ch) => ch.listens);

  /** Deletes old changes and messages at most once a minute (or now, when forced). */
  const prune = (force = false): Promise<void> => {
    if (force || Date.now() - lastPrune >= PRUNE_EVERY_MS) {
      lastPrune = Date.now();
      pruning = pruning.then(async () => {
        try {
          const changes = await pruneChanges(db);
          const messages = await getMessageLog() ? await pruneMessages(db) : 0;
          if (changes + messages > 0) log.debug("realtime log pruned", { changes, messages });
        } catch (err) {
          log.warn("realtime prune failed", { err });
        }
      });
    }
    return pruning;
  };

  const listen = async (): Promise<void> => {
    await keepLogging(db);
    lastLease = Date.now();
  };

  const expireTokens = () => {
    const now = Date.now() / 1000;
    for (const conn of connections) {
      for (const channel of [...conn.channels.values()]) {
        if (channel.exp <= now) conn.shutdown(channel, expired(channel.exp).message);
      }
    }
  };

  /** postgres_changes: read from the change log, delivered under each subscriber's RLS. */
  const pollChanges = async (): Promise<void> => {
    const channels = listening();
    if (channels.length === 0) {
      changesCursor = null;
      return;
    }
    // Keep the change log on while channels listen: renewed at a sixth of the lease.
    if (Date.now() - lastLease >= (LISTEN_LEASE_SECONDS * 1000) / 6) await listen();
    changesCursor ??= cursorFor(channels.map((ch) => ch.since));
    for (let page = 0; page < MAX_PAGES_PER_POLL; page++) {
      const read = await readChanges(db, changesCursor, PAGE);
      if (read.changes.length > 0) {
        const plan = await planDeliveries(db, log, await getCatalog(), read.changes, listening());
        for (const d of plan) d.channel.push("postgres_changes", d.payload);
      }
      changesCursor = read.cursor;
      if (read.changes.length < PAGE) break;
    }
  };

  /** Broadcast from the database: every joined channel may have a topic that is sent to. */
  const pollMessages = async (): Promise<void> => {
    const channels = joined();
    if (channels.length === 0 || !(await getMessageLog())) {
      messagesCursor = null;
      return;
    }
    messagesCursor ??= cursorFor(channels.map((ch) => ch.since));
    for (let page = 0; page < MAX_PAGES_PER_POLL; page++) {
      const read = await readMessages(db, messagesCursor, PAGE);
      relayMessages(read.messages, joined());
      messagesCursor = read.cursor;
      if (read.messages.length < PAGE) break;
    }
  };

  const poll = async (): Promise<void> => {
    try {
      expireTokens();
      await pollChanges();
      await pollMessages();
      await prune();
    } catch (err) {
      log.error("realtime poll failed", { err });
    }
  };
  const poller = new Poller(poll, opts.pollMs ?? 100);

  const onChannelsChanged = () => {
    if (closed) return;
    if (joined().length > 0) poller.start();
    else {
      void poller.stop();
      changesCursor = null;
      messagesCursor = null;
    }
  };

  const route = async (req: Request, url: URL): Promise<Response | null> => {
    if (url.pathname !== REALTIME_PATH) return null;
    if (closed) return errorResponse(503, "unavailable", "Realtime is shutting down");
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return errorResponse(400, "invalid_request", "Expected a WebSocket upgrade");
    }
    const vsn = vsnOf(url);
    if (!vsn) return errorResponse(400, "invalid_request", "Unsupported vsn");
    const apiKey = url.searchParams.get("apikey") ?? req.headers.get("x-api-key") ?? "";
    const check = await checkToken(verifier, apiKey);
    // Phoenix answers a refused socket connect with 403 and no upgrade.
    if (!check.ok) return errorResponse(403, "forbidden", `${check.code}: ${check.message}`);
    const { socket, response } = Deno.upgradeWebSocket(req);
    const conn = new Connection(socket, vsn, apiKey, {
      verifier,
      log,
      catalog: getCatalog,
      snapshot: () => currentSnapshot(db),
      listen,
      mayRead: (caller, topic) => mayReadTopic(db, caller, topic),
      onChannelsChanged,
    });
    connections.add(conn);
    socket.onclose = () => {
      connections.delete(conn);
      conn.channels.clear();
      onChannelsChanged();
    };
    socket.onerror = () => {}; // an error is followed by close, handled above
    return response;
  };

  return {
    route,
    wake() {
      if (closed) return;
      poller.wake();
      // Changes logged for listeners that have left: keep the log short regardless.
      void prune();
    },
    async close() {
      closed = true;
      await poller.stop();
      const open = [...connections];
      connections.clear();
      for (const conn of open) conn.close();
      // A join in progress may still be talking to the database.
      await Promise.all(open.map((conn) => conn.idle()));
      await pruning;
    },
    async installSql() {
      await db.exec(await Deno.readTextFile(SQL_FILE));
      catalog = null;
      messageLog = null;
      await prune(true);
    },
  };
}
