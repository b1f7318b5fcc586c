import { describe, expect, it } from "vitest";
import { planSummary } from "./usage-summary-plan.js";

describe("planSummary", () => {
  it("reads a day-aligned range from the roll-up alone", () => {
    expect(planSummary("2025-03-01T00:00:00.000Z", "2025-04-01T00:00:00.000Z")).toEqual({
      days: { first: "2025-03-01", last: "2025-03-31" },
      add: [],
      subtract: [],
    });
  });

  it("ends a month-so-far report late in the day with that whole day minus the rest of it, not with the day's records", () => {
    expect(planSummary("2025-03-01T00:00:00.000Z", "2025-03-20T17:41:23.456Z")).toEqual({
      days: { first: "2025-03-01", last: "2025-03-20" },
      add: [],
      subtract: [{ from: "2025-03-20T17:41:23.456Z", to: "2025-03-21T00:00:00.000Z" }],
    });
  });

  it("reads the records of an edge's shorter part: after midnight at the end, before midnight at the start", () => {
    expect(planSummary("2025-03-01T21:00:00.000Z", "2025-03-20T02:00:00.000Z")).toEqual({
      days: { first: "2025-03-02", last: "2025-03-19" },
      add: [
        { from: "2025-03-01T21:00:00.000Z", to: "2025-03-02T00:00:00.000Z" },
        { from: "2025-03-20T00:00:00.000Z", to: "2025-03-20T02:00:00.000Z" },
      ],
      subtract: [],
    });
  });

  it("takes a start day whole and subtracts its early hours when most of it is inside", () => {
    expect(planSummary("2025-03-01T02:00:00.000Z", "2025-03-03T00:00:00.000Z")).toEqual({
      days: { first: "2025-03-01", last: "2025-03-02" },
      add: [],
      subtract: [{ from: "2025-03-01T00:00:00.000Z", to: "2025-03-01T02:00:00.000Z" }],
    });
  });

  it("reads a short range inside one day from its records, and a long one as the day minus both ends", () => {
    expect(planSummary("2025-03-05T10:00:00.000Z", "2025-03-05T11:00:00.000Z")).toEqual({
      days: null,
      add: [{ from: "2025-03-05T10:00:00.000Z", to: "2025-03-05T11:00:00.000Z" }],
      subtract: [],
    });
    expect(planSummary("2025-03-05T01:00:00.000Z", "2025-03-05T23:00:00.000Z")).toEqual({
      days: { first: "2025-03-05", last: "2025-03-05" },
      add: [],
      subtract: [
        { from: "2025-03-05T00:00:00.000Z", to: "2025-03-05T01:00:00.000Z" },
        { from: "2025-03-05T23:00:00.000Z", to: "2025-03-06T00:00:00.000Z" },
      ],
    });
  });

  it("reads records only across midnight when two partial days meet", () => {
    expect(planSummary("2025-03-05T23:00:00.000Z", "2025-03-06T01:00:00.000Z")).toEqual({
      days: null,
      add: [
        { from: "2025-03-05T23:00:00.000Z", to: "2025-03-06T00:00:00.000Z" },
        { from: "2025-03-06T00:00:00.000Z", to: "2025-03-06T01:00:00.000Z" },
      ],
      subtract: [],
    });
  });

  it("plans nothing for an empty range and refuses instants not in the stored form", () => {
    expect(planSummary("2025-03-05T10:00:00.000Z", "2025-03-05T10:00:00.000Z")).toEqual({ days: null, add: [], subtract: [] });
    expect(() => planSummary("2025-03-05", "2025-03-06T00:00:00.000Z")).toThrow(/from is not an ISO-8601 UTC instant/);
    expect(() => planSummary("2025-03-05T00:00:00.000Z", "2025-03-06T01:00:00+01:00")).toThrow(/to is not an ISO-8601 UTC instant/);
  });
});
