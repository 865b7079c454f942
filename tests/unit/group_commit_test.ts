// GroupCommit: what the stage and subscriber runners commit their outcomes through. Driven here
// with commit functions whose answers the test releases, so when each call starts is exact.
import assert from "node:assert/strict";
import { GroupCommit } from "../../shared/batch.ts";

/** A commit function whose calls wait until the test lets them go. */
function gate<I, O>(answer: (items: I[]) => O[] | Error) {
  const calls: I[][] = [];
  const pending: (() => void)[] = [];
  const fn = (items: I[]) => {
    calls.push(items);
    return new Promise<O[]>((resolve, reject) => {
      pending.push(() => {
        const a = answer(items);
        if (a instanceof Error) reject(a);
        else resolve(a);
      });
    });
  };
  const releaseAll = async () => {
    while (pending.length > 0) {
      pending.shift()!();
      await new Promise((r) => setTimeout(r, 0));
    }
  };
  return { calls, fn, releaseAll };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("GroupCommit sends the first item alone and gathers those that come while it is in flight", async () => {
  const many = gate<number, string>((items) => items.map((i) => `many:${i}`));
  const one = gate<number, string>((items) => items.map((i) => `one:${i}`));
  const gc = new GroupCommit(many.fn, (i: number) => one.fn([i]).then((r) => r[0]));
  const first = gc.submit(1);
  await tick();
  assert.deepEqual(one.calls, [[1]], "the first goes at once, alone");
  const later = [2, 3, 4].map((i) => gc.submit(i));
  await tick();
  assert.deepEqual(many.calls, [], "nothing else starts while the first is in flight");
  await one.releaseAll();
  await tick();
  assert.deepEqual(many.calls, [[2, 3, 4]], "the three that waited go in one call");
  await many.releaseAll();
  assert.equal(await first, "one:1");
  assert.deepEqual(await Promise.all(later), ["many:2", "many:3", "many:4"]);
});

Deno.test("GroupCommit gathers the submissions of one tick into one call", async () => {
  const many = gate<number, number>((items) => items.map((i) => i * 10));
  const gc = new GroupCommit(many.fn, () => Promise.reject(new Error("not alone")));
  const all = Promise.all([1, 2, 3].map((i) => gc.submit(i)));
  await tick();
  assert.deepEqual(many.calls, [[1, 2, 3]]);
  await many.releaseAll();
  assert.deepEqual(await all, [10, 20, 30]);
});

Deno.test("GroupCommit commits each item alone when the group fails, and only the bad one fails", async () => {
  const many = gate<number, string>(() => new Error("check constraint"));
  const single: number[] = [];
  const gc = new GroupCommit(many.fn, (i: number) => {
    single.push(i);
    return i === 2 ? Promise.reject(new Error(`bad ${i}`)) : Promise.resolve(`ok:${i}`);
  });
  const results = Promise.allSettled([1, 2, 3].map((i) => gc.submit(i)));
  await tick();
  await many.releaseAll();
  const settled = await results;
  assert.deepEqual(many.calls, [[1, 2, 3]]);
  assert.deepEqual(single.sort(), [1, 2, 3]);
  assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.equal((settled[1] as PromiseRejectedResult).reason.message, "bad 2");
  assert.equal((settled[0] as PromiseFulfilledResult<string>).value, "ok:1");
});

Deno.test("GroupCommit treats an answer of the wrong length as a failed group", async () => {
  const gc = new GroupCommit(
    (items: number[]) => Promise.resolve(items.slice(1).map(String)),
    (i: number) => Promise.resolve(`alone:${i}`),
  );
  assert.deepEqual(await Promise.all([1, 2].map((i) => gc.submit(i))), ["alone:1", "alone:2"]);
});

Deno.test("GroupCommit keeps working after a drain: a later item starts a new one", async () => {
  const calls: number[][] = [];
  const gc = new GroupCommit(
    (items: number[]) => (calls.push(items), Promise.resolve(items)),
    (i: number) => (calls.push([i]), Promise.resolve(i)),
  );
  assert.equal(await gc.submit(1), 1);
  assert.equal(await gc.submit(2), 2);
  assert.deepEqual(await Promise.all([gc.submit(3), gc.submit(4)]), [3, 4]);
  assert.deepEqual(calls, [[1], [2], [3, 4]]);
});
