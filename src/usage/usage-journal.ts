import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import type { ProviderId } from "../lib/domain.js";
import type { UsageRecord, UsageSource } from "../store/ports.js";
import { checkUsageRecord } from "./usage-record-check.js";

/**
 * The usage journal: a per-instance append-only file under the data directory, with one short
 * line when a call is about to go upstream and one when its usage record is handed to the
 * batched writer. A start line is one `write(2)` of its own; the end lines of one turn of the
 * event loop share one. The kernel keeps written pages when the process is killed (SIGKILL, an
 * out-of-memory kill), so no fsync is needed for that. (A power loss
 * can still lose the last lines; the database's own durability is the same trade.)
 *
 * At the next start, the journals of instances that are gone are replayed
 * ({@link replayUsageJournals}): a call with an end line gets the record that line holds; a call
 * with only a start line gets a `recovered` record at its budget reservation. Record ids are
 * fixed at the start line and the store ignores ids it already holds, so records that were
 * committed before the kill are not counted twice.
 *
 * The journal is cut into segments; a segment is deleted once every call started in it has
 * ended and the writer has committed everything queued after that, so it stays small.
 */

/** What the start line says: enough to make a record if the call's end is never written. */
export type JournalStart = {
  id: string;
  createdAt: string;
  requestId: string;
  owner: string;
  keyId: string | null;
  source: UsageSource;
  /** The caller's tier; absent from lines written before it was recorded. */
  tier?: string | null;
  provider: ProviderId;
  endpoint: string;
  model: string;
  streamed: boolean;
  /** The call's budget reservation (nano-USD), when a budget reserved one. */
  reservedNanoUsd: number | null;
};

/** A started call, handed back to `end`; opaque to callers. */
export type JournalTicket = { readonly id: string; readonly segment: object };

export type UsageJournal = {
  /** Writes the start line; call before anything goes upstream (so before any answer can reach the client). */
  start(entry: JournalStart): JournalTicket;
  /**
   * Writes a new start line for a started call (same id) whose key, source or reservation changed
   * (a fallback); the replay keeps the last one. Use the returned ticket from then on.
   */
  restart(ticket: JournalTicket, entry: JournalStart): JournalTicket;
  /** Writes the end line: the call's record (queued for the writer), or `undefined` when the call made none. */
  end(ticket: JournalTicket, record: UsageRecord | undefined): void;
  /**
   * Stops rotating and closes the file. `committed`: every record was written to the store, so
   * the journal is deleted; otherwise it stays for the next start to replay.
   */
  close(options: { committed: boolean }): Promise<void>;
};

export type UsageJournalDeps = {
  /** The journal directory (`<data dir>/usage-journal`). */
  directory: string;
  /** Writes every record queued so far; rejects when the store did not take them. */
  flush: () => Promise<void>;
  /** A new segment is started this often (when the current one has lines). Default 5 s. */
  rotateMs?: number;
  onError?: (error: unknown, message: string) => void;
};

/** Journals this process has open (tests run several instances in one process). */
const openInstances = new Set<string>();

/**
 * `<host>~<pid>-<random>.<segment>.log`: host and pid tell a live instance's journal from a dead
 * one's. A pid says nothing about another host's processes (a volume shared across hosts or pods,
 * where every container may be pid 1), so only this host's journals are replayed.
 */
const FILE_PATTERN = /^([A-Za-z0-9_-]+)~(\d+)-([0-9a-f]+)\.(\d+)\.log$/;

/** This host's name as a file-name part. */
function hostPart(): string {
  return hostname().replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "host";
}

type Segment = { seq: number; file: string; fd: number; open: number; lines: number };

/**
 * Opens this instance's journal (creating the directory). Throws when it cannot be written, so a
 * data directory Keyport cannot write stops the start instead of silently losing the guarantee.
 */
export function openUsageJournal(deps: UsageJournalDeps): UsageJournal {
  mkdirSync(deps.directory, { recursive: true });
  const instance = `${hostPart()}~${process.pid}-${randomBytes(6).toString("hex")}`;
  openInstances.add(instance);
  const rotateMs = deps.rotateMs ?? 5_000;
  let seq = 0;
  let isClosed = false;
  let deleting: Promise<void> | undefined;
  const sealed: Segment[] = [];

  function openSegment(): Segment {
    seq += 1;
    const file = path.join(deps.directory, `${instance}.${seq}.log`);
    return { seq, file, fd: openSync(file, "a"), open: 0, lines: 0 };
  }

  let current = openSegment();

  let isFailing = false;
  let pendingEnds = "";
  let isWriteScheduled = false;

  function writeNow(lines: string): void {
    try {
      writeSync(current.fd, lines);
      current.lines += 1;
      isFailing = false;
    } catch (error) {
      // A full disk must not fail the calls (the writer still records them); said once, not per call.
      if (!isFailing) deps.onError?.(error, "usage journal write failed");
      isFailing = true;
    }
  }

  /** The end lines gathered so far in this turn of the event loop, taken out to be written. */
  function takePendingEnds(): string {
    const lines = pendingEnds;
    pendingEnds = "";
    return lines;
  }

  /** Writes the end lines gathered in this turn of the event loop: one `write(2)` for all of them. */
  function writePendingEnds(): void {
    isWriteScheduled = false;
    if (pendingEnds.length === 0) return;
    writeNow(takePendingEnds());
  }

  /**
   * End lines may come after the answer, so those of one turn of the event loop are written
   * together (`setImmediate`), or sooner with the next start line of the turn (`start`): under
   * load one system call for many calls. A kill in between loses only their figures: those calls
   * are replayed from their start lines as `recovered`.
   */
  function writeEnd(line: string): void {
    pendingEnds += line;
    if (isWriteScheduled) return;
    isWriteScheduled = true;
    setImmediate(writePendingEnds);
  }

  function rotate(): void {
    writePendingEnds();
    if (isClosed || current.lines === 0) return;
    const old = current;
    current = openSegment();
    closeSync(old.fd);
    sealed.push(old);
  }

  /** Deletes the sealed segments whose calls have all ended, once the writer has committed their records. */
  async function deleteSettled(): Promise<void> {
    const settled = sealed.filter((segment) => segment.open === 0);
    if (settled.length === 0) return;
    await deps.flush();
    for (const segment of settled) {
      unlinkQuietly(segment.file);
      sealed.splice(sealed.indexOf(segment), 1);
    }
  }

  const timer = setInterval(() => {
    rotate();
    deleting ??= deleteSettled()
      .catch(() => undefined) // the store is down: the segments stay until it answers
      .finally(() => {
        deleting = undefined;
      });
  }, rotateMs);
  timer.unref();

  function start(entry: JournalStart): JournalTicket {
    const segment = current;
    segment.open += 1;
    // At once: the line must be on disk before any answer can reach the client. End lines
    // waiting for the turn's end go in the same write (before it: they are older).
    const line = `S${JSON.stringify(entry)}\n`;
    writeNow(pendingEnds.length === 0 ? line : takePendingEnds() + line);
    return { id: entry.id, segment };
  }

  return {
    start,
    restart(ticket, entry) {
      // The call now counts in the segment of its newest start line, the one a replay needs.
      (ticket.segment as Segment).open -= 1;
      return start(entry);
    },
    end(ticket, record) {
      (ticket.segment as Segment).open -= 1;
      writeEnd(record === undefined ? `X${JSON.stringify(ticket.id)}\n` : `E${JSON.stringify(record)}\n`);
    },
    async close({ committed }) {
      if (isClosed) return;
      isClosed = true;
      openInstances.delete(instance);
      clearInterval(timer);
      await deleting;
      writePendingEnds();
      closeSync(current.fd);
      if (!committed) return;
      for (const segment of [...sealed, current]) unlinkQuietly(segment.file);
      sealed.length = 0;
      // A clean stop leaves the data directory as it found it (unless another instance still writes here).
      try {
        rmdirSync(deps.directory);
      } catch {
        // Not empty, or already gone.
      }
    },
  };
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}

/** Whether the instance that writes a journal is still running (then its journal is not ours to replay). */
function isRunning(instance: string, pid: number): boolean {
  // Our own pid on a journal this process did not open is an earlier process (containers reuse pid 1).
  if (pid === process.pid) return openInstances.has(instance);
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** `foreign`: journal files of another host, left alone (see `FILE_PATTERN`). */
export type ReplayResult = { files: number; records: number; recovered: number; foreign: number };

/**
 * Turns the journals of instances that are gone into usage records and deletes them once the
 * store has taken the records. A call with an end line gets that line's record; a call with only
 * a start line (the instance died before the call ended) gets a `recovered` record: tokens
 * unknown, cost its budget reservation (unknown without one), status `recovered`. A torn last
 * line is skipped. Leaves the files in place when the store refuses, for the next start.
 */
export async function replayUsageJournals(
  directory: string,
  insert: (records: UsageRecord[]) => Promise<void>,
  options: { batchSize?: number } = {},
): Promise<ReplayResult> {
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return { files: 0, records: 0, recovered: 0, foreign: 0 };
  }
  const host = hostPart();
  let foreign = 0;
  const byInstance = new Map<string, { pid: number; files: { seq: number; file: string }[] }>();
  for (const name of names) {
    const match = FILE_PATTERN.exec(name);
    if (match === null) continue;
    const [, fileHost = "", pid = "", random = "", seqText = ""] = match;
    if (fileHost !== host) {
      foreign += 1;
      continue;
    }
    const key = `${fileHost}~${pid}-${random}`;
    const entry = byInstance.get(key) ?? { pid: Number(pid), files: [] };
    entry.files.push({ seq: Number(seqText), file: path.join(directory, name) });
    byInstance.set(key, entry);
  }
  const result: ReplayResult = { files: 0, records: 0, recovered: 0, foreign };
  const batchSize = options.batchSize ?? 200;
  // The same check the writer makes: a record it would have refused is not retried forever.
  const insertChecked = async (records: readonly UsageRecord[]): Promise<number> => {
    const checked = records.flatMap((record) => {
      const check = checkUsageRecord(record);
      return check.ok ? [check.record] : [];
    });
    for (let at = 0; at < checked.length; at += batchSize) await insert(checked.slice(at, at + batchSize));
    return checked.length;
  };
  for (const [instance, { pid, files }] of byInstance) {
    if (isRunning(instance, pid)) continue;
    files.sort((a, b) => a.seq - b.seq);
    // One segment at a time: a journal that grew through a long database outage is never read whole.
    const reader = createJournalReader();
    for (const { file } of files) result.records += await insertChecked(reader.read(readFileSync(file, "utf8")));
    const unended = reader.unended();
    result.records += await insertChecked(unended);
    result.recovered += unended.length;
    for (const { file } of files) unlinkQuietly(file);
    result.files += files.length;
  }
  return result;
}

/**
 * Reads one instance's journal segment by segment, in order. An end line gives its record at once
 * (its start line came before it, possibly in a segment already deleted); an `X` line (no record)
 * forgets its start; what is left at the end are the calls that never ended. Only those are held
 * across segments.
 */
export function createJournalReader() {
  const open = new Map<string, JournalStart>();
  return {
    /** The records the ended calls of one segment's text hold. A torn line is skipped. */
    read(text: string): UsageRecord[] {
      const records: UsageRecord[] = [];
      for (const line of text.split("\n")) {
        if (line.length < 2) continue;
        const value = parseLine(line.slice(1));
        if (value === undefined) continue;
        if (line[0] === "S" && isObjectWithId(value)) {
          open.set(value.id, value as JournalStart);
        } else if (line[0] === "E" && isObjectWithId(value)) {
          open.delete(value.id);
          records.push(value as UsageRecord);
        } else if (line[0] === "X" && typeof value === "string") {
          open.delete(value);
        }
      }
      return records;
    },
    /** The calls started and never ended, as `recovered` records. */
    unended(): UsageRecord[] {
      return [...open.values()].map(recoveredRecord);
    },
  };
}

/** The records one instance's journal holds (all segments' texts, in order); `recovered` of them never ended. */
export function recordsOf(texts: readonly string[]): { records: UsageRecord[]; recovered: number } {
  const reader = createJournalReader();
  const records = texts.flatMap((text) => reader.read(text));
  const unended = reader.unended();
  return { records: [...records, ...unended], recovered: unended.length };
}

/** The record of a call whose end was never written: it reached (or was about to reach) the provider, figures unknown. */
function recoveredRecord(start: JournalStart): UsageRecord {
  return {
    id: start.id,
    owner: start.owner,
    keyId: start.keyId,
    source: start.source,
    tier: start.tier ?? null,
    provider: start.provider,
    endpoint: start.endpoint,
    model: start.model,
    inputTokens: null,
    outputTokens: null,
    cachedInputTokens: null,
    cacheWriteTokens: null,
    costNanoUsd: start.reservedNanoUsd,
    prices: null,
    status: "recovered",
    httpStatus: 0,
    latencyMs: 0,
    ttfbMs: null,
    streamed: start.streamed,
    requestId: start.requestId,
    createdAt: start.createdAt,
  };
}

function parseLine(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObjectWithId(value: unknown): value is { id: string } {
  return typeof value === "object" && value !== null && typeof (value as { id?: unknown }).id === "string";
}
