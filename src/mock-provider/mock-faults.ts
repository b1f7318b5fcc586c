import { isRecord } from "./mock-text.js";
import type { MockContentEncoding, MockFault, MockFaultMatch } from "./types.js";

/** Pending faults in injection order; each is used up after `times` matching requests. */
export type FaultList = {
  add(fault: MockFault): void;
  clear(): void;
  /** Takes the first fault that matches, counting one use. Only streams match `reset-mid-stream`. */
  take(request: { path: string; key: string | undefined; isStream: boolean }): MockFault | undefined;
};

export function createFaultList(): FaultList {
  let entries: Array<{ fault: MockFault; remaining: number }> = [];
  return {
    add(fault) {
      entries.push({ fault, remaining: fault.times ?? 1 });
    },
    clear() {
      entries = [];
    },
    take(request) {
      if (entries.length === 0) return undefined;
      const entry = entries.find(({ fault }) => matches(fault, request));
      if (entry === undefined) return undefined;
      entry.remaining -= 1;
      if (entry.remaining <= 0) entries = entries.filter((candidate) => candidate !== entry);
      return entry.fault;
    },
  };
}

function matches(fault: MockFault, request: { path: string; key: string | undefined; isStream: boolean }): boolean {
  if (fault.kind === "reset-mid-stream" && !request.isStream) return false;
  if (fault.match?.path !== undefined && fault.match.path !== request.path) return false;
  if (fault.match?.key !== undefined && fault.match.key !== request.key) return false;
  return true;
}

/**
 * Validates a fault from the control API (or a caller that built one by hand). Returns the fault,
 * or a sentence saying what is wrong.
 */
export function parseMockFault(value: unknown): MockFault | string {
  if (!isRecord(value)) return "a fault must be a JSON object";
  const common: { match?: MockFaultMatch; times?: number } = {};
  if (value.match !== undefined) {
    const match = parseMatch(value.match);
    if (typeof match === "string") return match;
    common.match = match;
  }
  if (value.times !== undefined) {
    const times = value.times;
    if (typeof times !== "number" || !(Number.isInteger(times) || times === Infinity) || times < 1) {
      return "times must be a positive integer";
    }
    common.times = times;
  }
  switch (value.kind) {
    case "status":
      return parseStatusFault(value, common);
    case "reset-mid-stream":
      if (!isWholeNumber(value.afterEvents)) return "afterEvents must be an integer of 0 or more";
      return { ...common, kind: "reset-mid-stream", afterEvents: value.afterEvents };
    case "delay":
      if (!isWholeNumber(value.ms)) return "ms must be an integer of 0 or more";
      return { ...common, kind: "delay", ms: value.ms };
    case "reset":
      return { ...common, kind: "reset" };
    case "alter":
      return parseAlterFault(value, common);
    default:
      return 'kind must be "status", "reset-mid-stream", "delay", "reset" or "alter"';
  }
}

function parseStatusFault(value: Record<string, unknown>, common: { match?: MockFaultMatch; times?: number }) {
  const status = value.status;
  if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
    return "status must be an HTTP status from 100 to 599";
  }
  const fault: MockFault = { ...common, kind: "status", status };
  if (value.body !== undefined) fault.body = value.body;
  if (value.headers !== undefined) {
    const headers = parseHeaders(value.headers);
    if (typeof headers === "string") return headers;
    fault.headers = headers;
  }
  return fault;
}

const CONTENT_ENCODINGS: readonly MockContentEncoding[] = ["gzip", "deflate", "br"];

function parseAlterFault(value: Record<string, unknown>, common: { match?: MockFaultMatch; times?: number }): MockFault | string {
  const fault: MockFault = { ...common, kind: "alter" };
  if (value.headers !== undefined) {
    const headers = parseHeaders(value.headers);
    if (typeof headers === "string") return headers;
    fault.headers = headers;
  }
  if (value.contentEncoding !== undefined) {
    const encoding = CONTENT_ENCODINGS.find((candidate) => candidate === value.contentEncoding);
    if (encoding === undefined) return `contentEncoding must be one of ${CONTENT_ENCODINGS.join(", ")}`;
    fault.contentEncoding = encoding;
  }
  return fault;
}

function parseHeaders(value: unknown): Record<string, string> | string {
  if (!isRecord(value) || !Object.values(value).every((item) => typeof item === "string")) {
    return "headers must be an object of strings";
  }
  return value as Record<string, string>;
}

function parseMatch(value: unknown): MockFaultMatch | string {
  if (!isRecord(value)) return "match must be an object";
  const match: MockFaultMatch = {};
  for (const field of ["path", "key"] as const) {
    const item = value[field];
    if (item === undefined) continue;
    if (typeof item !== "string") return `match.${field} must be a string`;
    match[field] = item;
  }
  return match;
}

function isWholeNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}
