import { describe, expect, it } from "vitest";
import { scrubSecretFragments } from "./scrub.js";

const KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";

describe("scrubSecretFragments", () => {
  it("removes a 22-character piece of a key without its prefix, keeping the words around it", () => {
    const fragment = KEY.slice(12, 34);
    expect(scrubSecretFragments(`refused key ${fragment}, sorry`, [KEY])).toBe("refused key [redacted], sorry");
  });

  it("removes exactly 16 characters but leaves 15", () => {
    expect(scrubSecretFragments(`<${KEY.slice(5, 21)}>`, [KEY])).toBe("<[redacted]>");
    expect(scrubSecretFragments(`<${KEY.slice(5, 20)}>`, [KEY])).toBe(`<${KEY.slice(5, 20)}>`);
  });

  it("merges overlapping and adjacent matches, and handles several runs and several secrets", () => {
    const other = "ANOTHERsecretVALUEthatIsLong0123";
    const text = `a ${KEY} b ${KEY.slice(0, 16)}${KEY.slice(16, 32)} c ${other.slice(3, 25)} d`;
    expect(scrubSecretFragments(text, [KEY, other])).toBe("a [redacted] b [redacted] c [redacted] d");
  });

  it("leaves text without any run of a secret untouched, and ignores secrets shorter than the run", () => {
    expect(scrubSecretFragments("nothing to see here, just words", [KEY, "short"])).toBe("nothing to see here, just words");
    expect(scrubSecretFragments("", [KEY])).toBe("");
    expect(scrubSecretFragments(KEY, [])).toBe(KEY);
  });
});
