// isUuid() and UuidSchema / TaskIdParam: the one UUID check, and the :id parameter built on it.
import assert from "node:assert/strict";
import { TaskIdParam, UuidSchema } from "../../shared/api/schemas.ts";
import { isUuid, UUID_PATTERN } from "../../shared/uuid.ts";

const UPPER = "7B0C2E1A-9F3D-4C55-8E21-0A1B2C3D4E5F";

Deno.test("isUuid() accepts the canonical form in either case and any version", () => {
  for (
    const id of [
      crypto.randomUUID(),
      UPPER,
      "00000000-0000-0000-0000-000000000000", // nil
      "017f22e2-79b0-7cc3-98c4-dc0c0c07398f", // v7
      "ffffffff-ffff-ffff-ffff-ffffffffffff", // no valid version, yet a Postgres uuid
    ]
  ) assert.ok(isUuid(id), id);
});

Deno.test("isUuid() rejects anything else", () => {
  for (
    const id of [
      "",
      "not-a-uuid",
      "7b0c2e1a9f3d4c558e210a1b2c3d4e5f", // no dashes
      "{7b0c2e1a-9f3d-4c55-8e21-0a1b2c3d4e5f}", // braces
      "7b0c2e1a-9f3d-4c55-8e21-0a1b2c3d4e5", // short
      "7b0c2e1a-9f3d-4c55-8e21-0a1b2c3d4e5fa", // long
      "7b0c2e1g-9f3d-4c55-8e21-0a1b2c3d4e5f", // not hex
      ` ${UPPER}`,
      `${UPPER}\n`,
    ]
  ) assert.ok(!isUuid(id), JSON.stringify(id));
});

Deno.test("UUID_PATTERN has no flags (the OpenAPI document carries it)", () => {
  assert.equal(UUID_PATTERN.flags, "");
});

Deno.test("UuidSchema hands on a UUID lower-cased and refuses a non-UUID", () => {
  assert.equal(UuidSchema.parse(UPPER), UPPER.toLowerCase());
  const bad = UuidSchema.safeParse("not-a-uuid");
  assert.ok(!bad.success);
  assert.match(bad.error.issues[0].message, /UUID/);
});

Deno.test("TaskIdParam checks :id with UuidSchema", () => {
  assert.deepEqual(TaskIdParam.parse({ id: UPPER }), { id: UPPER.toLowerCase() });
  assert.ok(!TaskIdParam.safeParse({ id: "../etc/passwd" }).success);
});
