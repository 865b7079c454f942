/**
 * @module hash — SHA-256 of bytes as lowercase hex, with Web Crypto (no package, runs on Edge).
 */

/**
 * Returns the SHA-256 digest of `bytes` as 64 lowercase hex characters.
 *
 * @example
 * await sha256Hex(new TextEncoder().encode("abc")); // "ba7816bf…f20015ad"
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
