import { describe, expect, it } from "vitest";
import { createCancellation } from "./cancellation.js";

describe("cancellation", () => {
  it("tells each listener once, and a listener added after the abort at once", () => {
    const cancellation = createCancellation();
    const calls: string[] = [];
    cancellation.onAbort(() => calls.push("first"));
    cancellation.onAbort(() => calls.push("second"));
    expect(cancellation.aborted).toBe(false);
    cancellation.abort();
    cancellation.abort();
    expect(cancellation.aborted).toBe(true);
    expect(calls).toEqual(["first", "second"]);
    cancellation.onAbort(() => calls.push("late"));
    expect(calls).toEqual(["first", "second", "late"]);
  });

  it("does not call a listener that unsubscribed", () => {
    const cancellation = createCancellation();
    const calls: string[] = [];
    const unsubscribe = cancellation.onAbort(() => calls.push("gone"));
    cancellation.onAbort(() => calls.push("kept"));
    unsubscribe();
    cancellation.abort();
    expect(calls).toEqual(["kept"]);
  });
});
