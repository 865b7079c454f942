/**
 * @module realtime/channel — one joined channel (topic `realtime:<name>`) of a socket: who joined
 * it (token and caller, re-checked on `access_token`), whether it is private (authorised by the
 * realtime.messages policies), its postgres_changes bindings, and the pushes the Realtime server
 * makes on it (`system`, `postgres_changes`, `broadcast`, `phx_close`).
 */
import type { Caller } from "../../shared/auth.ts";
import type { Snapshot } from "./change_log.ts";
import type { PhxMessage } from "./protocol.ts";
import type { Binding } from "./subscription.ts";

/** What a channel is made from at join. */
export interface ChannelInit {
  topic: string;
  joinRef: string | null;
  token: string;
  caller: Caller;
  /** The token's `exp`, seconds since the epoch. */
  exp: number;
  bindings: Binding[];
  /** The database snapshot at join: changes of transactions finished by then are not sent. */
  since: Snapshot;
  /** config.broadcast.ack: reply to each broadcast push. */
  ackBroadcast: boolean;
  /** config.private: gets private broadcasts only, once the policies allow it. */
  private: boolean;
}

/** A joined channel. */
export class Channel {
  readonly topic: string;
  /** The topic without `realtime:`, as `system` messages name the channel. */
  readonly subTopic: string;
  readonly joinRef: string | null;
  readonly bindings: Binding[];
  readonly since: Snapshot;
  readonly ackBroadcast: boolean;
  readonly private: boolean;
  token: string;
  caller: Caller;
  exp: number;
  readonly #send: (msg: PhxMessage) => void;

  constructor(init: ChannelInit, send: (msg: PhxMessage) => void) {
    this.topic = init.topic;
    this.subTopic = init.topic.replace(/^realtime:/, "");
    this.joinRef = init.joinRef;
    this.bindings = init.bindings;
    this.since = init.since;
    this.ackBroadcast = init.ackBroadcast;
    this.private = init.private;
    this.token = init.token;
    this.caller = init.caller;
    this.exp = init.exp;
    this.#send = send;
  }

  /** Whether any postgres_changes binding can receive changes (every channel gets broadcasts). */
  get listens(): boolean {
    return this.bindings.some((b) => b.error === null);
  }

  /** Pushes a server message on this channel (ref null, join_ref of the join). */
  push(event: string, payload: unknown): void {
    this.#send({ joinRef: this.joinRef, ref: null, topic: this.topic, event, payload });
  }

  /** A `system` message, e.g. "Subscribed to PostgreSQL" (extension postgres_changes). */
  system(extension: "system" | "postgres_changes", status: "ok" | "error", message: string) {
    this.push("system", { extension, status, message, channel: this.subTopic });
  }

  /** Phoenix's `phx_close` for a channel that ended: ref and join_ref are both the join's ref. */
  close(): void {
    this.#send({
      joinRef: this.joinRef,
      ref: this.joinRef,
      topic: this.topic,
      event: "phx_close",
      payload: {},
    });
  }
}
