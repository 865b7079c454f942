// The SSE stream's cursor never skips an event, even when transactions commit in another order
// than they took their event sequence numbers (PostgreSQL: two real sessions).
import assert from "node:assert/strict";
import { ENGINE, openTestDb } from "../_helpers/db.ts";
import { STREAM_QUERY } from "../../shared/api/stream_routes.ts";
import type { EventRow } from "../../shared/events.ts";
import type { Queryable } from "../../shared/db.ts";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => resolve = r);
  return { promise, resolve };
}

const createTask = (tx: Queryable, url: string) =>
  tx.query<{ task_id: string }>("select * from darkroom.create_task(p_image_url => $1)", [url]);

Deno.test({
  name: "STREAM_QUERY delivers an event whose transaction commits after a later sequence number",
  ignore: ENGINE === "pglite", // one session: transactions cannot interleave
  async fn() {
    const t = await openTestDb();
    const a = t.connect();
    const b = t.connect();
    try {
      const aHasXid = deferred();
      const bInserted = deferred();
      const aCommitted = deferred();
      const firstRead = deferred();
      // A takes its transaction id first, B inserts first (lower seq), A inserts and commits,
      // B commits last.
      const txA = a.transaction(async (tx) => {
        await tx.query("select pg_current_xact_id()");
        aHasXid.resolve();
        await bInserted.promise;
        await createTask(tx, "http://e.com/a.jpg");
      }).then(() => aCommitted.resolve());
      const txB = b.transaction(async (tx) => {
        await aHasXid.promise;
        await tx.query("select pg_current_xact_id()");
        await createTask(tx, "http://e.com/b.jpg");
        bInserted.resolve();
        await firstRead.promise;
      });
      await aCommitted.promise;

      const read = (cursor: number) => t.db.query<EventRow>(STREAM_QUERY, [cursor, null]);
      const first = await read(0);
      assert.deepEqual(first.map((r) => r.payload.imageUrl), ["http://e.com/a.jpg"]);
      const cursor = Number(first[0].seq);
      firstRead.resolve();
      await txB;
      await txA;
      const second = await read(cursor);
      assert.deepEqual(second.map((r) => r.payload.imageUrl), ["http://e.com/b.jpg"]);
      assert.ok(Number(second[0].seq) < cursor, "B's event has the lower seq");
      assert.deepEqual(await read(Number(second[0].seq)), []);
    } finally {
      await t.close();
    }
  },
});
