import { describe, expect, it } from "vitest";
import { createLifecycle } from "./lifecycle.js";

describe("lifecycle", () => {
  it("cuts the streams still running at the deadline, and any stream that starts after it at once", () => {
    const lifecycle = createLifecycle();
    const cut: string[] = [];
    const stream = (name: string) => ({ cut: () => cut.push(name) });
    const finished = stream("finished");
    lifecycle.trackStream(stream("running"));
    lifecycle.trackStream(finished);
    lifecycle.untrackStream(finished);
    expect(cut).toEqual([]);

    expect(lifecycle.cutStreams()).toBe(1);
    expect(cut).toEqual(["running"]);
    lifecycle.trackStream(stream("late"));
    expect(cut).toEqual(["running", "late"]);
    // Cut once: a second deadline finds nothing left.
    expect(lifecycle.cutStreams()).toBe(0);
  });

  it("marks the shutdown before draining, and drains once nothing is in flight", async () => {
    const lifecycle = createLifecycle();
    lifecycle.enter();
    expect(lifecycle.closing).toBe(false);
    lifecycle.markClosing();
    expect(lifecycle.closing).toBe(true);
    expect(lifecycle.inFlight).toBe(1);
    const drained = lifecycle.drain(60_000);
    lifecycle.leave();
    await drained;
    expect(lifecycle.inFlight).toBe(0);
  });
});
