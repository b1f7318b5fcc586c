import fs, { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLogger, fdWrittenPerTurn } from "./logger.js";

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("log lines written once per turn of the event loop", () => {
  let directory: string;
  let file: string;
  let fd: number;

  beforeEach(() => {
    directory = mkdtempSync(path.join(os.tmpdir(), "keyport-log-"));
    file = path.join(directory, "out.log");
    fd = openSync(file, "a");
  });
  afterEach(() => {
    vi.restoreAllMocks();
    closeSync(fd);
    rmSync(directory, { recursive: true, force: true });
  });

  const lines = () =>
    readFileSync(file, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as { msg: string; level: number; service: string });

  it("writes the lines of one turn together, in order, in one write when the turn ends", async () => {
    const writes = vi.spyOn(fs, "writeSync");
    const logger = createLogger({ level: "info", destination: fdWrittenPerTurn(fd) });
    logger.info("first");
    logger.warn("second");
    logger.debug("below the level");
    expect(readFileSync(file, "utf8")).toBe("");
    await nextTurn();
    expect(lines().map((line) => [line.msg, line.level, line.service])).toEqual([
      ["first", 30, "keyport"],
      ["second", 40, "keyport"],
    ]);
    expect(writes.mock.calls.filter(([target]) => target === fd)).toHaveLength(1);

    // A later turn's lines go out in a write of their own.
    logger.info("third");
    await nextTurn();
    expect(lines().map((line) => line.msg)).toEqual(["first", "second", "third"]);
    expect(writes.mock.calls.filter(([target]) => target === fd)).toHaveLength(2);
  });

  it("writes the pending lines at once when the logger is flushed", () => {
    const logger = createLogger({ level: "info", destination: fdWrittenPerTurn(fd) });
    logger.info("before a flush");
    logger.flush();
    expect(lines().map((line) => line.msg)).toEqual(["before a flush"]);
  });
});
