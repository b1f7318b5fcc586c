import type { RecordedRequest } from "./types.js";

export type RequestRecorder = {
  record(request: RecordedRequest): void;
  list(): RecordedRequest[];
  clear(): void;
};

/** Keeps the latest `limit` requests; `0` keeps none (for benchmarks). */
export function createRequestRecorder(limit: number): RequestRecorder {
  let recorded: RecordedRequest[] = [];
  return {
    record(request) {
      if (limit <= 0) return;
      if (recorded.length >= limit) recorded.shift();
      recorded.push(request);
    },
    list: () => [...recorded],
    clear() {
      recorded = [];
    },
  };
}
