// What a worker does with the messages it holds (shared/batch.ts, used by both runners), on a
// real database: it extends the visibility of a job that outlives the read's timeout, stops
// extending when the job ends, and gives messages back when it is stopped. Small download stages
// written here stand in for the real ones.
import assert from "node:assert/strict";
import { ENGINE, openTestDb, purgeStageQueues, type TestDb } from "../_helpers/db.ts";
import type { Db, Queryable } from "../../shared/db.ts";
import { StageError } from "../../shared/errors.ts";
import { silentLogger } from "../../shared/log.ts";
import { runStageBatch, type StageDefinition, type StageJob } from "../../shared/stage_runner.ts";
import type { StageResults } from "../../shared/stages.ts";
import { cancelTask, createTask, getTask, listTaskEvents } from "../../shared/tasks.ts";
import { runSubscriberBatch } from "../../shared/subscriber_runner.ts";

let t: TestDb | undefined;

Deno.test.beforeAll(async () => {
  t = await openTestDb();
});

Deno.test.afterAll(async () => {
  await t?.close();
});

function test(name: string, fn: (db: Db) => Promise<void>): void {
  const leakChecks = ENGINE === "pglite";
  Deno.test({
    name,
    sanitizeOps: leakChecks,
    sanitizeResources: leakChecks,
    async fn() {
      await purgeStageQueues(t!.db);
      await fn(t!.db);
    },
  });
}

const DOWNLOADED: StageResults["download"] = {
  sha256: "b".repeat(64),
  contentType: "image/jpeg",
  byteSize: 10,
  storagePath: "sha256/b",
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A download stage with a 1 s visibility timeout whose work is `run`. */
function slowStage(
  run: (job: StageJob) => Promise<StageResults["download"]>,
  more: Partial<StageDefinition<"download">> = {},
): StageDefinition<"download"> {
  return {
    stage: "download",
    source: "download-worker",
    visibilityTimeoutSeconds: 1,
    timeoutMs: 10_000,
    run,
    ...more,
  };
}

const deps = (db: Db, more: Record<string, unknown> = {}) => ({
  db,
  log: silentLogger,
  maxAttempts: 3,
  ...more,
});

/** The download queue's messages with their visibility relative to now, in ms. */
async function downloadMessages(db: Queryable) {
  const rows = await db.query<{ msg_id: number; vt_in_ms: number; vt: Date }>(
    `select msg_id, vt, (extract(epoch from vt - clock_timestamp()) * 1000)::float8 as vt_in_ms
       from pgmq.q_image_download order by msg_id`,
  );
  return rows.map((r) => ({ ...r, vt_in_ms: Number(r.vt_in_ms), vt: new Date(r.vt) }));
}

test("runStageBatch() extends a slow job's visibility: no second delivery, gone once done", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/slow.jpg" });
  const slow = runStageBatch(deps(db), slowStage(() => sleep(2_600).then(() => DOWNLOADED)));
  await sleep(1_700); // past the 1 s visibility timeout of the read
  let secondRan = false;
  const second = await runStageBatch(
    deps(db),
    slowStage(() => {
      secondRan = true;
      return Promise.resolve(DOWNLOADED);
    }),
  );
  assert.equal(second.read, 0, "the held message was not handed out again");
  assert.equal(secondRan, false);
  const first = await slow;
  assert.equal(first.advanced, 1);
  assert.deepEqual(await downloadMessages(db), [], "the handled message is gone");
  assert.equal((await getTask(db, created.taskId))?.stage, "metadata");
});

test("runStageBatch() stops extending when the job fails: the retry's visibility stays", async (db) => {
  await createTask(db, { imageUrl: "http://example.com/fails.jpg" });
  const summary = await runStageBatch(
    deps(db),
    slowStage(() =>
      sleep(1_300).then(() => Promise.reject(new StageError("http_status", "status 503", true)))
    ),
  );
  assert.equal(summary.retried, 1);
  const [after] = await downloadMessages(db);
  // schedule_retry's backoff for try 1: 2 s, up to 20 % more.
  assert.ok(after.vt_in_ms > 1_000 && after.vt_in_ms <= 2_500, `vt in ${after.vt_in_ms} ms`);
  await sleep(1_200); // more than two extension periods of a 1 s timeout
  const [later] = await downloadMessages(db);
  assert.equal(later.vt.getTime(), after.vt.getTime(), "no extension after the job ended");
});

test("runStageBatch() once stopped reads nothing", async (db) => {
  await createTask(db, { imageUrl: "http://example.com/stopped.jpg" });
  const stopped = AbortSignal.abort();
  const summary = await runStageBatch(
    deps(db, { stopSignal: stopped }),
    slowStage(() => Promise.resolve(DOWNLOADED)),
  );
  assert.equal(summary.read, 0);
  const [msg] = await downloadMessages(db);
  assert.ok(msg.vt_in_ms <= 0, "still visible");
});

test("runStageBatch() stopped mid-batch gives back the messages it has not started", async (db) => {
  const a = await createTask(db, { imageUrl: "http://example.com/a.jpg" });
  const b = await createTask(db, { imageUrl: "http://example.com/b.jpg" });
  const stop = new AbortController();
  const summary = await runStageBatch(
    deps(db, { stopSignal: stop.signal, stopGraceMs: 5_000 }),
    slowStage(() => {
      stop.abort(); // the stop arrives while the first job runs
      return sleep(100).then(() => DOWNLOADED);
    }, { concurrency: 1, visibilityTimeoutSeconds: 30 }),
  );
  assert.equal(summary.read, 2);
  assert.equal(summary.advanced, 1, "the job in flight finished within the grace");
  assert.equal(summary.released, 1);
  const left = await downloadMessages(db);
  assert.equal(left.length, 1);
  assert.ok(left[0].vt_in_ms <= 0, "the released message is visible at once");
  const stages = [(await getTask(db, a.taskId))?.stage, (await getTask(db, b.taskId))?.stage];
  assert.deepEqual(stages.sort(), ["download", "metadata"]);
});

test("runStageBatch() at the stop deadline releases a running job and ignores its late outcome", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/stuck.jpg" });
  const stop = new AbortController();
  let jobSignal: AbortSignal | undefined;
  let late: Promise<unknown> = Promise.resolve();
  const started = performance.now();
  const summary = await runStageBatch(
    deps(db, { stopSignal: stop.signal, stopGraceMs: 200 }),
    slowStage((job) => {
      jobSignal = job.signal;
      stop.abort();
      // Ignores its signal and answers long after the deadline.
      late = sleep(1_000);
      return late.then(() => DOWNLOADED);
    }, { visibilityTimeoutSeconds: 30 }),
  );
  assert.ok(performance.now() - started < 900, "the batch did not wait for the job");
  assert.equal(summary.released, 1);
  assert.equal(jobSignal?.aborted, true, "the job was told to stop");
  await late;
  await sleep(50);
  const [msg] = await downloadMessages(db);
  assert.ok(msg.vt_in_ms <= 0, "released: visible at once");
  const task = await getTask(db, created.taskId);
  assert.equal(task?.stage, "download", "the late result was not applied");
  const events = (await listTaskEvents(db, created.taskId)).map((e) => e.eventType);
  assert.deepEqual(events, ["task.created"]);
});

test("a released message taken by another worker: the first outcome wins, the other is ignored", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/twice.jpg" });
  const claim = async () => {
    const [m] = await db.query<{ msg_id: number }>(
      "select msg_id from pgmq.read('image_download', 30, 1)",
    );
    const [c] = await db.query<{ proceed: boolean; attempt: number }>(
      `select proceed, attempt from darkroom.begin_stage(p_stage => 'download',
         p_msg_ids => array[$1]::bigint[], p_task_ids => array[$2]::uuid[], p_max_attempts => 5)`,
      [m.msg_id, created.taskId],
    );
    assert.equal(c.proceed, true);
    return Number(m.msg_id);
  };
  const first = await claim();
  await db.query("select pgmq.set_vt('image_download', $1::bigint, 0)", [first]); // released
  const second = await claim();
  assert.equal(second, first, "the same message, read again");
  const complete = async () => {
    const [r] = await db.query<{ r: string }>(
      `select darkroom.complete_stage(p_task_id => $1::uuid, p_stage => 'download',
         p_msg_id => $2::bigint, p_result => $3::jsonb, p_source => 'download-worker') as r`,
      [created.taskId, first, JSON.stringify(DOWNLOADED)],
    );
    return r.r;
  };
  assert.equal(await complete(), "advanced");
  assert.equal(await complete(), "ignored", "the late outcome changes nothing");
  const next = await db.query(
    "select 1 from pgmq.q_metadata_processing where message ->> 'taskId' = $1",
    [
      created.taskId,
    ],
  );
  assert.equal(next.length, 1, "one message for the next stage");
  const events = (await listTaskEvents(db, created.taskId)).map((e) => e.eventType);
  assert.deepEqual(events.filter((e) => e === "image.downloaded"), ["image.downloaded"]);
});

test("runSubscriberBatch() once stopped reads nothing", async (db) => {
  const summary = await runSubscriberBatch(deps(db, { stopSignal: AbortSignal.abort() }), {
    subscriber: "tag_indexer",
    source: "tag-indexer-worker",
    handle: () => Promise.resolve(),
  });
  assert.equal(summary.read, 0);
  assert.equal(summary.released, 0);
});

test("runSubscriberBatch() extends a slow event's visibility: no second delivery, gone once done", async (db) => {
  await db.query("select pgmq.purge_queue('evt_notification')");
  const created = await createTask(db, { imageUrl: "http://example.com/cancelled.jpg" });
  await cancelTask(db, created.taskId); // task.cancelled goes to the notification subscriber
  const subscriber = (handle: () => Promise<void>) => ({
    subscriber: "notification",
    source: "notification-worker",
    visibilityTimeoutSeconds: 1,
    timeoutMs: 10_000,
    handle,
  });
  const slow = runSubscriberBatch(deps(db), subscriber(() => sleep(2_600)));
  await sleep(1_700);
  const second = await runSubscriberBatch(deps(db), subscriber(() => Promise.resolve()));
  assert.equal(second.read, 0, "the held message was not handed out again");
  assert.equal((await slow).done, 1);
  const left = await db.query("select 1 from pgmq.q_evt_notification");
  assert.equal(left.length, 0, "the handled message is gone");
});
