import { describe, expect, it } from "vitest";
import { MAX_REQUEST_ID_LENGTH, requestIdOf } from "./request-id.js";

describe("requestIdOf", () => {
  it.each(["abc", "trace-4f2a.b_9:x", "0", "A".repeat(MAX_REQUEST_ID_LENGTH), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "task-7"])("keeps %s", (given) => {
    expect(requestIdOf({ "x-request-id": given })).toBe(given);
  });

  it.each([
    ["absent", undefined],
    ["empty", ""],
    ["too long", "A".repeat(MAX_REQUEST_ID_LENGTH + 1)],
    ["with a space", "a b"],
    ["with a newline", "a\nb"],
    ["with quotes", 'a"b'],
    ["with a slash", "a/b"],
    ["with non-ASCII", "zürich"],
    ["repeated (an array)", ["a", "b"]],
    ["shaped like a provider key", "sk-proj-abcdefghijklmnop"],
    ["shaped like a JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"],
    ["shaped like an Anthropic key", "x-sk-ant-api03-abcdef"],
  ])("replaces one %s with a new req_ id", (_name, given) => {
    const id = requestIdOf(given === undefined ? {} : { "x-request-id": given as string });
    expect(id).toMatch(/^req_[0-9a-z]{26}$/);
  });
});
