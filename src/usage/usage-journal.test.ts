import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { newId } from "../lib/ids.js";
import type { UsageRecord } from "../store/ports.js";
import { type JournalStart, openUsageJournal, recordsOf, replayUsageJournals } from "./usage-journal.js";

const directories: string[] = [];
function tempDir(): string {
  const directory = mkdtempSync(path.join(tmpdir(), "keyport-journal-"));
  directories.push(directory);
  return directory;
}
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function startOf(overrides: Partial<JournalStart> = {}): JournalStart {
  return {
    id: newId("use"),
    createdAt: new Date().toISOString(),
    requestId: newId("req"),
    owner: "user:journal",
    keyId: null,
    source: "platform",
    provider: "openai",
    endpoint: "chat.completions",
    model: "gpt-4o-mini",
    streamed: true,
    reservedNanoUsd: null,
    ...overrides,
  };
}

function recordOf(start: JournalStart, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    id: start.id,
    owner: start.owner,
    keyId: start.keyId,
    source: start.source,
    tier: "pro",
    provider: start.provider,
    endpoint: start.endpoint,
    model: start.model,
    inputTokens: 12,
    outputTokens: 7,
    cachedInputTokens: 0,
    cacheWriteTokens: null,
    costNanoUsd: 4_200,
    prices: { inputNanoUsdPerMTok: 150_000_000, outputNanoUsdPerMTok: 600_000_000, cachedInputNanoUsdPerMTok: 75_000_000, cacheWriteNanoUsdPerMTok: 0 },
    status: "ok",
    httpStatus: 200,
    latencyMs: 35,
    ttfbMs: 20,
    streamed: start.streamed,
    requestId: start.requestId,
    createdAt: start.createdAt,
    ...overrides,
  };
}

const noFlush = async () => undefined;

describe("usage journal", () => {
  it("records an ended call as its end line says, a call that never ended as recovered at its reservation, and nothing for a call that made no record", async () => {
    const directory = tempDir();
    const journal = openUsageJournal({ directory, flush: noFlush });
    const ended = startOf();
    const unended = startOf({ reservedNanoUsd: 90_000, streamed: false, keyId: "key_1", source: "byok" });
    const unreserved = startOf();
    const refused = startOf();
    const endedTicket = journal.start(ended);
    journal.start(unended);
    journal.start(unreserved);
    const refusedTicket = journal.start(refused);
    journal.end(endedTicket, recordOf(ended));
    journal.end(refusedTicket, undefined);
    // As after a SIGKILL: the file is left as it is, and this process is "the next start".
    await journal.close({ committed: false });

    const inserted: UsageRecord[] = [];
    const result = await replayUsageJournals(directory, async (records) => {
      inserted.push(...records);
    });
    expect(result).toEqual({ files: 1, records: 3, recovered: 2, foreign: 0 });
    expect(inserted.find((record) => record.id === ended.id)).toEqual(recordOf(ended));
    expect(inserted.find((record) => record.id === unended.id)).toMatchObject({
      status: "recovered",
      costNanoUsd: 90_000,
      inputTokens: null,
      outputTokens: null,
      prices: null,
      keyId: "key_1",
      source: "byok",
      streamed: false,
      requestId: unended.requestId,
      createdAt: unended.createdAt,
    });
    expect(inserted.find((record) => record.id === unreserved.id)).toMatchObject({ status: "recovered", costNanoUsd: null });
    expect(inserted.some((record) => record.id === refused.id)).toBe(false);
    expect(existsSync(directory)).toBe(true);
  });

  it("recovers a call restarted on another key (a fallback) as its last start line says, with its tier", async () => {
    const directory = tempDir();
    const journal = openUsageJournal({ directory, flush: noFlush });
    const own = startOf({ keyId: "key_own", source: "byok", tier: "pro", reservedNanoUsd: 50_000 });
    const ticket = journal.start(own);
    journal.restart(ticket, { ...own, keyId: null, source: "platform", reservedNanoUsd: 70_000 });
    await journal.close({ committed: false });

    const inserted: UsageRecord[] = [];
    expect(await replayUsageJournals(directory, async (records) => void inserted.push(...records))).toEqual({ files: 1, records: 1, recovered: 1, foreign: 0 });
    expect(inserted).toEqual([expect.objectContaining({ id: own.id, status: "recovered", keyId: null, source: "platform", tier: "pro", costNanoUsd: 70_000 })]);
  });

  it("lets the segment of a restarted call's first start line go: the call counts where its newest one is", async () => {
    const directory = tempDir();
    const journal = openUsageJournal({ directory, flush: noFlush, rotateMs: 10 });
    const own = startOf({ keyId: "key_own", source: "byok" });
    const ticket = journal.start(own);
    await vi.waitFor(() => expect(readdirSync(directory).length).toBe(2));
    const restarted = journal.restart(ticket, { ...own, keyId: null, source: "platform" });
    // The first segment has no call left: deleted at a later rotation while the call still runs.
    await vi.waitFor(() => expect(readdirSync(directory).some((name) => name.endsWith(".1.log"))).toBe(false));
    await journal.close({ committed: false });
    const { records, recovered } = recordsOf(readdirSync(directory).sort().map((name) => readFileSync(path.join(directory, name), "utf8")));
    expect(recovered).toBe(1);
    expect(records).toEqual([expect.objectContaining({ id: own.id, source: "platform" })]);
    expect(restarted.id).toBe(own.id);
  });

  it("skips a torn last line and an end line whose start was in a deleted segment still counts", () => {
    const start = startOf();
    const orphanEnd = recordOf(startOf());
    const text = `S${JSON.stringify(start)}\nE${JSON.stringify(orphanEnd)}\nS{"id":"use_torn","crea`;
    const { records, recovered } = recordsOf([text]);
    expect(records.map((record) => record.id)).toEqual([orphanEnd.id, start.id]);
    expect(recovered).toBe(1);
  });

  it("pairs a start line with its end line in a later segment: one record, with the end's figures", () => {
    const start = startOf();
    const record = recordOf(start, { status: "client_aborted", outputTokens: 3 });
    const { records, recovered } = recordsOf([`S${JSON.stringify(start)}\n`, `E${JSON.stringify(record)}\n`]);
    expect(records).toEqual([record]);
    expect(recovered).toBe(0);
  });

  it("leaves the journal of a running instance and of an open journal alone, and keeps files the store refused", async () => {
    const directory = tempDir();
    const host = hostname().replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
    // The parent process (the test runner) is alive: its journal is not ours.
    const live = path.join(directory, `${host}~${process.ppid}-abcdef.1.log`);
    writeFileSync(live, `S${JSON.stringify(startOf())}\n`);
    // Another host's pid says nothing here: its journal is left alone.
    const foreign = path.join(directory, `other-host~1-abcdef.1.log`);
    writeFileSync(foreign, `S${JSON.stringify(startOf())}\n`);
    const open = openUsageJournal({ directory, flush: noFlush });
    open.start(startOf());
    const dead = path.join(directory, `${host}~${process.pid}-0123456789ab.1.log`);
    writeFileSync(dead, `S${JSON.stringify(startOf())}\n`);

    await expect(replayUsageJournals(directory, async () => Promise.reject(new Error("database down")))).rejects.toThrow("database down");
    expect(readdirSync(directory)).toContain(path.basename(dead));

    const inserted: UsageRecord[] = [];
    const result = await replayUsageJournals(directory, async (records) => {
      inserted.push(...records);
    });
    expect(result).toEqual({ files: 1, records: 1, recovered: 1, foreign: 1 });
    const left = readdirSync(directory);
    expect(left).toHaveLength(3);
    expect(left).toEqual(expect.arrayContaining([path.basename(live), path.basename(foreign), expect.stringMatching(new RegExp(`^${host}~${process.pid}-[0-9a-f]{12}\\.1\\.log$`))]));
    await open.close({ committed: true });
    expect(readdirSync(directory).sort()).toEqual([path.basename(live), path.basename(foreign)].sort());
  });

  it("deletes a segment once its calls have ended and the writer committed, and keeps it while the writer fails", async () => {
    const directory = tempDir();
    let storeAnswers = false;
    const flush = vi.fn(async () => {
      if (!storeAnswers) throw new Error("database down");
    });
    const journal = openUsageJournal({ directory, flush, rotateMs: 10 });
    const first = startOf();
    const ticket = journal.start(first);
    // Rotated, but its call is still running: kept, and nobody asks the writer yet.
    await vi.waitFor(() => expect(readdirSync(directory).length).toBe(2));
    expect(flush).not.toHaveBeenCalled();

    const record = recordOf(first);
    journal.end(ticket, record);
    // The end line goes to the segment current when the call ends (written at the end of this turn of the event loop).
    await new Promise((resolve) => setImmediate(resolve));
    const current = readdirSync(directory).find((name) => name.endsWith(".2.log")) ?? "";
    expect(readFileSync(path.join(directory, current), "utf8")).toContain(`E${JSON.stringify(record)}`);
    await vi.waitFor(() => expect(flush).toHaveBeenCalled());
    expect(readdirSync(directory).some((name) => name.endsWith(".1.log"))).toBe(true);

    storeAnswers = true;
    await vi.waitFor(() => expect(readdirSync(directory).some((name) => name.endsWith(".1.log"))).toBe(false));
    await journal.close({ committed: true });
    // Nothing left: not even the directory.
    expect(existsSync(directory)).toBe(false);
  });

  it("writes a start line at once and gathers the end lines of one turn of the event loop into one write", async () => {
    const directory = tempDir();
    const journal = openUsageJournal({ directory, flush: noFlush });
    const file = () => path.join(directory, readdirSync(directory)[0] ?? "");
    const starts = [startOf(), startOf(), startOf()];
    const tickets = starts.map((start) => journal.start(start));
    // Before any answer could reach a client: every start line is in the file.
    expect(readFileSync(file(), "utf8").split("\n").filter((line) => line.startsWith("S"))).toHaveLength(3);
    tickets.forEach((ticket, index) => journal.end(ticket, recordOf(starts[index] as JournalStart)));
    expect(readFileSync(file(), "utf8")).not.toContain("\nE");
    await new Promise((resolve) => setImmediate(resolve));
    expect(readFileSync(file(), "utf8").split("\n").filter((line) => line.startsWith("E"))).toHaveLength(3);
    await journal.close({ committed: true });
  });

  it("writes the end lines waiting for the turn's end with the next start line, before it", async () => {
    const directory = tempDir();
    const journal = openUsageJournal({ directory, flush: noFlush });
    const file = () => path.join(directory, readdirSync(directory)[0] ?? "");
    const kinds = () => readFileSync(file(), "utf8").split("\n").filter((line) => line !== "").map((line) => line[0]);
    const [first, second, third] = [startOf(), startOf(), startOf()] as [JournalStart, JournalStart, JournalStart];
    const tickets = [journal.start(first), journal.start(second)] as const;
    journal.end(tickets[0], recordOf(first));
    journal.end(tickets[1], undefined);
    expect(kinds()).toEqual(["S", "S"]);
    journal.start(third);
    // At once, with the start line: the two end lines of this turn, then the new start line.
    expect(kinds()).toEqual(["S", "S", "E", "X", "S"]);
    // Nothing is left for the turn's end to write, and nothing is written twice.
    await new Promise((resolve) => setImmediate(resolve));
    expect(kinds()).toEqual(["S", "S", "E", "X", "S"]);
    const { records, recovered } = recordsOf([readFileSync(file(), "utf8")]);
    expect(records.map((record) => [record.id, record.status])).toEqual([
      [first.id, "ok"],
      [third.id, "recovered"],
    ]);
    expect(recovered).toBe(1);
    await journal.close({ committed: true });
  });

  it("does not fail the call when a line cannot be written", async () => {
    const directory = tempDir();
    const errors: string[] = [];
    const journal = openUsageJournal({ directory, flush: noFlush, onError: (_error, message) => errors.push(message) });
    await journal.close({ committed: false });
    // Closed file: writes fail, and are reported (once) instead of thrown.
    expect(() => journal.end(journal.start(startOf()), undefined)).not.toThrow();
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toEqual(["usage journal write failed"]);
    appendFileSync(path.join(directory, "not-a-journal.txt"), "x");
    expect(await replayUsageJournals(directory, noFlush)).toEqual({ files: 1, records: 0, recovered: 0, foreign: 0 });
  });
});
