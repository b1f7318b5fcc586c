import { describe, expect, it } from "vitest";
import type { KeyRepo, ProviderKeyRow } from "../store/ports.js";
import { withCacheInvalidation } from "./invalidating-key-repo.js";

describe("withCacheInvalidation", () => {
  const row = { id: "key_1", owner: "user:a" } as ProviderKeyRow;

  function repoAnswering(setStatus: KeyRepo["setStatus"]): KeyRepo {
    return { setStatus } as KeyRepo;
  }

  it("tells the cache about a status change that changed something, and not about one that changed nothing", async () => {
    const invalidated: string[] = [];
    const invalidate = async (owner: string) => {
      invalidated.push(owner);
    };
    const change = { status: "invalid" as const, statusDetail: null, at: "t", onlyIfDifferent: true };
    await withCacheInvalidation(repoAnswering(async () => row), invalidate).setStatus("user:a", "key_1", change);
    expect(invalidated).toEqual(["user:a"]);
    await withCacheInvalidation(repoAnswering(async () => undefined), invalidate).setStatus("user:a", "key_1", change);
    expect(invalidated).toEqual(["user:a"]);
  });

  it("tells the cache when the write failed, since it may have happened", async () => {
    const invalidated: string[] = [];
    const failing = repoAnswering(() => Promise.reject(new Error("connection lost")));
    const keys = withCacheInvalidation(failing, async (owner) => {
      invalidated.push(owner);
    });
    await expect(keys.setStatus("user:a", "key_1", { status: "invalid", statusDetail: null, at: "t" })).rejects.toThrow("connection lost");
    expect(invalidated).toEqual(["user:a"]);
  });
});
