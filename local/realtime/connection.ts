/**
 * @module realtime/connection — one WebSocket of a realtime-js client: heartbeats on the
 * `phoenix` topic, `phx_join` (token check, for a private channel the realtime.messages policies,
 * postgres_changes bindings, the reply with their ids, then `system` "Subscribed to
 * PostgreSQL"), `access_token` refreshes, `phx_leave`. Broadcasts from the database reach every
 * channel (broadcast.ts); broadcasts and presence from clients are acknowledged, not relayed.
 */
import type { Caller, JwtVerifier } from "../../shared/auth.ts";
import type { Logger } from "../../shared/log.ts";
import type { Catalog } from "./catalog.ts";
import type { Snapshot } from "./change_log.ts";
import { Channel } from "./channel.ts";
import { decode, encode, type PhxMessage, reply, type Vsn } from "./protocol.ts";
import { type Binding, parseBindings } from "./subscription.ts";
import { checkToken, type TokenRefusal } from "./token.ts";

/** What a connection needs from the server. */
export interface ConnectionDeps {
  verifier: JwtVerifier;
  log: Logger;
  catalog(): Promise<Catalog>;
  /** The database's current snapshot (see change_log.ts `currentSnapshot`). */
  snapshot(): Promise<Snapshot>;
  /** Makes sure row changes are logged from now on (change_log.ts `keepLogging`). */
  listen(): Promise<void>;
  /** Whether the policies let `caller` read broadcasts of `topic` (broadcast.ts `mayReadTopic`). */
  mayRead(caller: Caller, topic: string): Promise<boolean>;
  /** Called when the set of listening channels may have changed. */
  onChannelsChanged(): void;
}

/** One client socket and its channels. */
export class Connection {
  readonly channels = new Map<string, Channel>();
  readonly #ws: WebSocket;
  readonly #vsn: Vsn;
  readonly #apiKey: string;
  readonly #deps: ConnectionDeps;
  // Messages are handled one at a time, in order: a join's token check is async.
  #queue: Promise<void> = Promise.resolve();

  constructor(ws: WebSocket, vsn: Vsn, apiKey: string, deps: ConnectionDeps) {
    this.#ws = ws;
    this.#vsn = vsn;
    this.#apiKey = apiKey;
    this.#deps = deps;
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      const msg = decode(vsn, e.data);
      if (!msg) return;
      this.#queue = this.#queue.then(() => this.#handle(msg)).catch((err) =>
        deps.log.error("realtime message failed", { err, event: msg.event, topic: msg.topic })
      );
    };
  }

  /** Sends one message if the socket is still open. */
  send(msg: PhxMessage): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(encode(this.#vsn, msg));
  }

  /** Ends a channel the way the server's `shutdown_response` does: system error, phx_close. */
  shutdown(channel: Channel, message: string): void {
    channel.system("system", "error", message);
    channel.close();
    this.#drop(channel);
  }

  /** Resolves once the messages received so far have been handled. */
  idle(): Promise<void> {
    return this.#queue;
  }

  /** Closes the socket (server shutdown). */
  close(code = 1001, reason = "server shutting down"): void {
    this.channels.clear();
    try {
      this.#ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  async #handle(msg: PhxMessage): Promise<void> {
    if (msg.topic === "phoenix" && msg.event === "heartbeat") return this.send(reply(msg, "ok"));
    if (msg.event === "phx_join") return await this.#join(msg);
    const channel = this.channels.get(msg.topic);
    if (!channel || (msg.joinRef !== null && msg.joinRef !== channel.joinRef)) {
      return this.send(reply(msg, "error", { reason: "unmatched topic" }));
    }
    switch (msg.event) {
      case "phx_leave":
        this.send(reply(msg, "ok"));
        channel.close();
        return this.#drop(channel);
      case "access_token":
        return await this.#refreshToken(channel, msg.payload?.access_token);
      case "presence":
        return this.send(reply(msg, "ok"));
      case "broadcast":
        if (channel.ackBroadcast) this.send(reply(msg, "ok"));
        return;
      default:
        // Realtime ignores (and only logs) any other client event.
        this.#deps.log.debug("realtime event ignored", { event: msg.event, topic: msg.topic });
    }
  }

  async #join(msg: PhxMessage): Promise<void> {
    if (!msg.topic.startsWith("realtime:")) {
      return this.send(reply(msg, "error", { reason: "unmatched topic" }));
    }
    if (msg.topic === "realtime:") {
      return this.send(
        reply(msg, "error", { reason: "TopicNameRequired: You must provide a topic name" }),
      );
    }
    // Phoenix closes the earlier join of the same topic on this socket.
    const previous = this.channels.get(msg.topic);
    if (previous) {
      previous.close();
      this.#drop(previous);
    }
    const payload = msg.payload ?? {};
    const config = payload.config ?? {};
    const token = this.#tokenOf(payload);
    const check = await checkToken(this.#deps.verifier, token);
    if (!check.ok) {
      this.#deps.log.warn("realtime join refused", { topic: msg.topic, code: check.code });
      return this.send(reply(msg, "error", { reason: `${check.code}: ${check.message}` }));
    }
    const isPrivate = config.private === true;
    const subTopic = msg.topic.slice("realtime:".length);
    let bindings: Binding[];
    let since: Snapshot;
    try {
      if (isPrivate && !(await this.#deps.mayRead(check.caller, subTopic))) {
        this.#deps.log.info("realtime join refused", { topic: msg.topic, role: check.caller.role });
        return this.send(reply(msg, "error", { reason: `Unauthorized: ${unreadable(subTopic)}` }));
      }
      bindings = parseBindings(config.postgres_changes, await this.#deps.catalog());
      // Changes are logged only while someone listens: from before the snapshot the channel
      // reads from, so none made after its join is missed.
      if (bindings.some((b) => b.error === null)) await this.#deps.listen();
      since = await this.#deps.snapshot();
    } catch (err) {
      this.#deps.log.error("realtime join failed", { err, topic: msg.topic });
      return this.send(reply(msg, "error", { reason: "Unknown Error on Channel" }));
    }
    const channel = new Channel({
      topic: msg.topic,
      joinRef: msg.joinRef ?? msg.ref,
      token,
      caller: check.caller,
      exp: check.exp,
      bindings,
      since,
      ackBroadcast: config.broadcast?.ack === true,
      private: isPrivate,
    }, (m) => this.send(m));
    this.channels.set(msg.topic, channel);
    this.send(reply(msg, "ok", {
      postgres_changes: bindings.map((b) => ({ ...b.params, id: b.id })),
    }));
    if (config.presence?.enabled === true) channel.push("presence_state", {});
    if (config.broadcast?.replication_ready === true) {
      channel.system("system", "ok", "Replication connection established");
    }
    if (bindings.length > 0) {
      const error = bindings.find((b) => b.error !== null)?.error;
      if (error) channel.system("postgres_changes", "error", error);
      else channel.system("postgres_changes", "ok", "Subscribed to PostgreSQL");
    }
    this.#deps.log.debug("realtime channel joined", {
      topic: msg.topic,
      role: check.caller.role,
      bindings: bindings.length,
    });
    this.#deps.onChannelsChanged();
  }

  /** The join's token: access_token (or legacy user_token), else the socket's apikey. */
  #tokenOf(payload: Record<string, unknown>): string {
    const token = payload.access_token ?? payload.user_token;
    // New-style API keys (sb_...) stand for the project key, as on Supabase.
    return typeof token === "string" && !token.startsWith("sb_") ? token : this.#apiKey;
  }

  async #refreshToken(channel: Channel, token: unknown): Promise<void> {
    if (typeof token !== "string" || token.startsWith("sb_") || token === channel.token) return;
    const check = await checkToken(this.#deps.verifier, token);
    if (!check.ok) return this.shutdown(channel, refreshRefusal(check));
    // A new token is a new reader: a private channel is asked about again, as Realtime does.
    if (channel.private && !(await this.#deps.mayRead(check.caller, channel.subTopic))) {
      return this.shutdown(channel, unreadable(channel.subTopic));
    }
    channel.token = token;
    channel.caller = check.caller;
    channel.exp = check.exp;
  }

  #drop(channel: Channel): void {
    if (this.channels.get(channel.topic) === channel) this.channels.delete(channel.topic);
    this.#deps.onChannelsChanged();
  }
}

/**
 * The message of a refused refresh, as `apply_access_token` words it: the plain message for
 * expired and malformed tokens, Elixir's `inspect` of the reason otherwise.
 */
function refreshRefusal(check: TokenRefusal): string {
  if (check.code === "JwtSignatureError") return ":signature_error";
  return check.message;
}

/** Realtime's words for a private topic the policies do not let the subscriber read. */
function unreadable(topic: string): string {
  return `You do not have permissions to read from this Channel topic: ${topic}`;
}
