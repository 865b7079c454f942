/**
 * @module realtime/protocol — Phoenix channel frames as realtime-js (@supabase/phoenix) speaks
 * them: vsn 1.0.0 sends JSON objects, vsn 2.0.0 (the default) JSON arrays
 * `[join_ref, ref, topic, event, payload]`, plus a binary frame for user broadcasts (kind 3).
 */

/** The serializer versions realtime-js can ask for with the `vsn` query parameter. */
export type Vsn = "1.0.0" | "2.0.0";

/** One Phoenix message, either direction. */
export interface PhxMessage {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  // deno-lint-ignore no-explicit-any
  payload: any;
}

/** The `vsn` of a socket URL; Phoenix falls back to 1.0.0 when it is absent. */
export function vsnOf(url: URL): Vsn | null {
  const vsn = url.searchParams.get("vsn") ?? "1.0.0";
  return vsn === "1.0.0" || vsn === "2.0.0" ? vsn : null;
}

/** Encodes a message as a text frame of the socket's serializer. */
export function encode(vsn: Vsn, msg: PhxMessage): string {
  if (vsn === "2.0.0") {
    return JSON.stringify([msg.joinRef, msg.ref, msg.topic, msg.event, msg.payload]);
  }
  return JSON.stringify({
    join_ref: msg.joinRef,
    ref: msg.ref,
    topic: msg.topic,
    event: msg.event,
    payload: msg.payload,
  });
}

/** Decodes a text or binary frame; null when it is not a Phoenix message. */
export function decode(vsn: Vsn, data: string | ArrayBuffer): PhxMessage | null {
  try {
    if (typeof data !== "string") return decodeBroadcastPush(new Uint8Array(data));
    const raw = JSON.parse(data);
    if (vsn === "2.0.0" && Array.isArray(raw) && raw.length === 5) {
      const [joinRef, ref, topic, event, payload] = raw;
      return check({ joinRef, ref, topic, event, payload });
    }
    if (vsn === "1.0.0" && raw && typeof raw === "object" && !Array.isArray(raw)) {
      return check({
        joinRef: raw.join_ref ?? null,
        ref: raw.ref ?? null,
        topic: raw.topic,
        event: raw.event,
        payload: raw.payload,
      });
    }
  } catch {
    // A frame we cannot parse is dropped, as Phoenix drops it.
  }
  return null;
}

function check(msg: PhxMessage): PhxMessage | null {
  if (typeof msg.topic !== "string" || typeof msg.event !== "string") return null;
  return { ...msg, joinRef: msg.joinRef ?? null, ref: msg.ref ?? null, payload: msg.payload ?? {} };
}

const USER_BROADCAST_PUSH = 3;
const JSON_ENCODING = 1;

/**
 * realtime-js serializer.ts `_encodeUserBroadcastPush`: kind, five lengths (join_ref, ref, topic,
 * event, metadata), the payload encoding, the strings, then the user payload.
 */
function decodeBroadcastPush(bytes: Uint8Array): PhxMessage | null {
  if (bytes[0] !== USER_BROADCAST_PUSH || bytes.length < 7) return null;
  const text = new TextDecoder();
  let offset = 7;
  const take = (len: number) => text.decode(bytes.subarray(offset, offset += len));
  const joinRef = take(bytes[1]);
  const ref = take(bytes[2]);
  const topic = take(bytes[3]);
  const userEvent = take(bytes[4]);
  const meta = take(bytes[5]);
  const body = bytes.subarray(offset);
  const payload = bytes[6] === JSON_ENCODING ? JSON.parse(text.decode(body)) : body;
  return {
    joinRef: joinRef || null,
    ref: ref || null,
    topic,
    event: "broadcast",
    payload: { type: "broadcast", event: userEvent, payload, ...(meta ? JSON.parse(meta) : {}) },
  };
}

/** The `phx_reply` to a pushed message. */
export function reply(
  to: PhxMessage,
  status: "ok" | "error",
  response: Record<string, unknown> = {},
): PhxMessage {
  return {
    joinRef: to.joinRef,
    ref: to.ref,
    topic: to.topic,
    event: "phx_reply",
    payload: { status, response },
  };
}
