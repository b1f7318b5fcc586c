import { describe, expect, it } from "vitest";
import { appendTopLevelField, fieldName, readTopLevelFields, replaceTopLevelField } from "./json-fields.js";

const WANTED = [fieldName("model"), fieldName("usage")];

function read(text: string) {
  return readTopLevelFields(Buffer.from(text, "utf8"), WANTED);
}

describe("readTopLevelFields", () => {
  it("reads the wanted fields of a provider answer and nothing else", () => {
    const answer = {
      id: "chatcmpl-1",
      model: "gpt-4o-mini",
      choices: [{ index: 0, message: { role: "assistant", content: "Hi" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 5, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 1 } },
    };
    expect(read(JSON.stringify(answer))).toEqual({ model: answer.model, usage: answer.usage });
    expect(read(JSON.stringify(answer, null, 2))).toEqual({ model: answer.model, usage: answer.usage });
  });

  it("ignores fields of the same name nested deeper, before and after the top-level ones", () => {
    const text = JSON.stringify({
      content: [{ type: "tool_use", input: { model: "not this", usage: { input_tokens: 999 } } }],
      model: "claude-haiku-4-5",
      usage: { input_tokens: 3, output_tokens: 4 },
      extra: [{ usage: { input_tokens: 1_000 } }, "usage", { model: "nor this" }],
    });
    expect(read(text)).toEqual({ model: "claude-haiku-4-5", usage: { input_tokens: 3, output_tokens: 4 } });
  });

  it("steps over strings holding quotes, backslashes, braces and key-like text", () => {
    const text = JSON.stringify({
      text: 'a "usage": {"input_tokens": 1} } ] \\',
      other: "\\",
      model: 'm"1',
      usage: { n: "}{" },
    });
    expect(text).toContain('\\"usage\\": {');
    expect(read(text)).toEqual({ model: 'm"1', usage: { n: "}{" } });
  });

  it("keeps non-ASCII text intact", () => {
    expect(read('{"note":"café ☕","model":"modèle-ü"}')).toEqual({ model: "modèle-ü" });
  });

  it("matches a key written with escapes, as JSON.parse would", () => {
    expect(read('{"mod\\u0065l":"escaped"}')).toEqual({ model: "escaped" });
  });

  it("takes the last of repeated fields, as JSON.parse does", () => {
    expect(read('{"model":"first","model":"second"}')).toEqual({ model: "second" });
  });

  it("reads literals and numbers, and leaves out a field whose value is not JSON", () => {
    expect(read('{"model":null,"usage":12}')).toEqual({ model: null, usage: 12 });
    expect(read('{"model":nope,"usage":{"a":1}}')).toEqual({ usage: { a: 1 } });
    // A raw control character is not allowed in a JSON string.
    expect(read('{"model":"a\nb","usage":{"a":1}}')).toEqual({ usage: { a: 1 } });
  });

  it("gives an empty result for an object without the fields", () => {
    expect(read("{}")).toEqual({});
    expect(read(' { "id" : "x" } ')).toEqual({});
  });

  it("gives undefined for anything that is not a JSON object", () => {
    for (const text of ["", "   ", "[]", '"model"', "null", "model", '{"model"', '{"model":"x"', '{"model" "x"}', '{"model":"x" "usage":1}', '{model:"x"}', '{"a":[1,2}', '{"a":"unterminated}']) {
      expect(read(text), text).toBeUndefined();
    }
  });

  it("handles a large body without reading it into objects", () => {
    const vectors = Array.from({ length: 200 }, (_, index) => ({ index, embedding: Array.from({ length: 256 }, (__, i) => i / 7) }));
    const text = JSON.stringify({ object: "list", data: vectors, model: "text-embedding-3-small", usage: { prompt_tokens: 8 } });
    expect(read(text)).toEqual({ model: "text-embedding-3-small", usage: { prompt_tokens: 8 } });
  });
});

describe("appendTopLevelField", () => {
  it("adds the member before the closing brace, trailing whitespace kept", () => {
    expect(String(appendTopLevelField(Buffer.from('{"a":1} \n'), "b", { c: true }))).toBe('{"a":1,"b":{"c":true}} \n');
  });

  it("gives undefined for a body that does not end in a brace", () => {
    for (const text of ["", "  ", "[1]", '{"a":1', '"x"']) expect(appendTopLevelField(Buffer.from(text), "b", 1), text).toBeUndefined();
  });
});

describe("replaceTopLevelField", () => {
  it("replaces the value of the last top-level occurrence, leaving every other byte", () => {
    const body = Buffer.from('{ "a": {"x": 1},\n "n": {"a": 2}, "a" : [1,2] , "z": 12345678901234567890 }');
    expect(replaceTopLevelField(body, "a", { b: true })?.toString()).toBe('{ "a": {"x": 1},\n "n": {"a": 2}, "a" : {"b":true} , "z": 12345678901234567890 }');
  });

  it("never parses the rest: a deeply nested sibling is stepped over", () => {
    const depth = 100_000;
    const body = Buffer.from(`{"deep":${"[".repeat(depth)}${"]".repeat(depth)},"so":{}}`);
    expect(replaceTopLevelField(body, "so", { include_usage: true })?.subarray(-30).toString()).toBe(`${"]".repeat(1)},"so":{"include_usage":true}}`);
  });

  it("answers undefined when the field is absent or the body is not an object", () => {
    expect(replaceTopLevelField(Buffer.from('{"b":{"a":1}}'), "a", 1)).toBeUndefined();
    expect(replaceTopLevelField(Buffer.from('[{"a":1}]'), "a", 1)).toBeUndefined();
    expect(replaceTopLevelField(Buffer.from('{"a":1'), "a", 1)).toBeUndefined();
    expect(replaceTopLevelField(Buffer.from("{}"), "a", 1)).toBeUndefined();
  });
});
