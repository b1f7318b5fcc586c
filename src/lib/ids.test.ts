import { describe, expect, it } from "vitest";
import { isIdOf, newId, newIdLowerBound } from "./ids.js";

describe("newId", () => {
  it("is the prefix, an underscore and 26 Crockford base32 characters", () => {
    for (const prefix of ["key", "evt", "req", "use", "ps"] as const) {
      expect(newId(prefix)).toMatch(new RegExp(`^${prefix}_[0-9a-hjkmnp-tv-z]{26}$`));
    }
  });

  it("encodes the time in its first ten characters, most significant first", () => {
    // 48 bits of time: the first nine characters are time alone; the tenth mixes in random bits.
    expect(newId("use", 0).slice(4, 13)).toBe("000000000");
    expect(newId("use", 2 ** 48 - 1).slice(4, 13)).toBe("zzzzzzzzz");
    expect(newId("use", 1).slice(4, 14)).toMatch(/^000000000[0-7]$/);
  });

  it("sorts as text in creation-time order", () => {
    const times = [1, 1_000, 1_795_616_324_123, 1_795_616_324_124, 2 ** 47];
    const ids = times.map((time) => newId("use", time));
    expect([...ids].sort()).toEqual(ids);
  });

  it("differs between two ids made in the same millisecond", () => {
    const ids = new Set(Array.from({ length: 1_000 }, () => newId("req", 1_795_616_324_123)));
    expect(ids.size).toBe(1_000);
  });

  it("sorts ids made in one millisecond in the order they were made, across prefixes", () => {
    const ids = Array.from({ length: 1_000 }, (_, index) => newId(index % 2 === 0 ? "evt" : "use", 1_795_616_324_200).slice(4));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(1_000);
  });

  it("carries the count into the next byte, and starts from fresh random bits in the next millisecond", () => {
    const first = newId("evt", 1_795_616_324_300);
    const sameMs = Array.from({ length: 300 }, () => newId("evt", 1_795_616_324_300));
    expect([first, ...sameMs]).toEqual([first, ...sameMs].sort());
    const next = newId("evt", 1_795_616_324_301);
    const lastOfMs = sameMs.at(-1) ?? "";
    expect(next > lastOfMs).toBe(true);
    expect(next.slice(14)).not.toBe(lastOfMs.slice(14));
  });
});

describe("isIdOf", () => {
  it("recognises ids of its prefix only", () => {
    const id = newId("evt");
    expect(isIdOf("evt", id)).toBe(true);
    expect(isIdOf("key", id)).toBe(false);
  });

  it.each(["zzzz", "", "evt_", "evt_zzzz", `evt_${"z".repeat(27)}`, `evt_${"I".repeat(26)}`, `evt_${"u".repeat(26)}`, `evt-${"0".repeat(26)}`, ` evt_${"0".repeat(26)}`])(
    "refuses %j",
    (value) => {
      expect(isIdOf("evt", value)).toBe(false);
    },
  );
});

describe("newIdLowerBound", () => {
  it("is the time's ten characters and sixteen zeros, the shape of an id", () => {
    expect(newIdLowerBound("use", 0)).toBe(`use_${"0".repeat(26)}`);
    expect(newIdLowerBound("use", 1)).toBe(`use_0000000004${"0".repeat(16)}`);
    expect(newIdLowerBound("use", 2 ** 48 - 1)).toBe(`use_zzzzzzzzzw${"0".repeat(16)}`);
    expect(isIdOf("use", newIdLowerBound("use", 1_795_616_324_123))).toBe(true);
  });

  it("shares the time characters of every id of that millisecond", () => {
    for (const time of [0, 1, 31, 32, 1_000, 1_795_616_324_123, 2 ** 47 + 5, 2 ** 48 - 1]) {
      const bound = newIdLowerBound("use", time);
      for (let made = 0; made < 50; made += 1) expect(newId("use", time).slice(0, 13)).toBe(bound.slice(0, 13));
    }
  });

  it("bounds a millisecond's ids: at or above its own bound, below the next millisecond's", () => {
    for (const time of [0, 1, 31, 32, 1_000, 1_795_616_324_123, 1_795_616_324_124, 2 ** 47, 2 ** 48 - 2]) {
      const ids = Array.from({ length: 200 }, () => newId("use", time));
      const lower = newIdLowerBound("use", time);
      const upper = newIdLowerBound("use", time + 1);
      for (const id of ids) {
        expect(id >= lower).toBe(true);
        expect(id < upper).toBe(true);
      }
    }
  });

  it("turns a range of whole UTC days into a range of ids, edges included and excluded as the days are", () => {
    const start = Date.parse("2026-12-01T00:00:00.000Z");
    const end = Date.parse("2026-12-02T00:00:00.000Z");
    const inside = [start, start + 1, end - 1].map((time) => newId("use", time));
    const outside = [start - 1, end, end + 1].map((time) => newId("use", time));
    const inRange = (id: string) => id >= newIdLowerBound("use", start) && id < newIdLowerBound("use", end);
    expect(inside.map(inRange)).toEqual([true, true, true]);
    expect(outside.map(inRange)).toEqual([false, false, false]);
  });

  it("refuses a time an id cannot hold", () => {
    for (const time of [-1, 1.5, 2 ** 48, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => newIdLowerBound("use", time)).toThrow(RangeError);
  });
});
