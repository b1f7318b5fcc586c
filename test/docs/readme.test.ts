import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../src/cli/command-help.js";

/**
 * The README is a manual: it opens with the two commands that get Keyport running and tested,
 * puts how to use and configure Keyport before the benchmark, and its links lead somewhere.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");
const README = read("README.md");

/** `## Heading` → its lines up to the next heading of the same or a higher level. */
function section(markdown: string, heading: string): string {
  const lines = markdown.split("\n");
  const start = lines.indexOf(heading);
  expect(start, `${heading} is missing`).toBeGreaterThanOrEqual(0);
  const level = heading.indexOf(" ");
  const end = lines.findIndex((line, index) => index > start && /^#+ /.test(line) && line.indexOf(" ") <= level);
  return lines.slice(start, end === -1 ? undefined : end).join("\n");
}

/** Top-level section names, in order; fenced code is left out so a `#` comment is no heading. */
function headings(markdown: string, prefix: string): string[] {
  return withoutCode(markdown)
    .split("\n")
    .filter((line) => line.startsWith(prefix))
    .map((line) => line.slice(prefix.length));
}

function withoutCode(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "");
}

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{Letter}\p{Number} _-]/gu, "")
    .replace(/ /g, "-");
}

describe("README.md", () => {
  it("opens with exactly the install-and-start command and the test command", () => {
    const firstBlock = /^```[^\n]*\n([\s\S]*?)^```$/m.exec(README)?.[1];
    expect(firstBlock?.trim().split("\n")).toEqual(["npm install && npm start", "npm test"]);
  });

  it("puts the commands, the configuration and operating Keyport before Performance", () => {
    const sections = headings(README, "## ");
    const at = (name: string) => {
      expect(sections, `README section ${name}`).toContain(name);
      return sections.indexOf(name);
    };
    expect(at("Commands")).toBeLessThan(at("Performance"));
    expect(at("Configuration")).toBeLessThan(at("Performance"));
    expect(at("Operating Keyport")).toBeLessThan(at("Performance"));
  });

  it("has a row in the Commands table for every command of the CLI, and none for others", () => {
    const rows = [...section(README, "## Commands").matchAll(/^\| `([a-z-]+)[^`]*` \|/gm)].map((match) => match[1]);
    expect(rows.toSorted()).toEqual(COMMANDS.map((command) => command.name).toSorted());
  });

  it("keeps Performance to the command, the targets and the latest table; the method and history are in bench/README.md", () => {
    const performance = section(README, "## Performance");
    expect(performance).toContain("npm run bench");
    expect(performance).toContain("[`bench/README.md`](bench/README.md)");
    expect(performance).toMatch(/\*\*Targets\*\*/);
    expect(performance).toMatch(/^\| mock latency \| case \|/m);
    // A diary grows back one paragraph at a time.
    expect(performance.split("\n").length).toBeLessThanOrEqual(60);
    const bench = read("bench/README.md");
    for (const heading of ["## What runs", "## Checks", "## Results and history", "### Changed, and tried and not kept"]) {
      expect(bench.split("\n")).toContain(heading);
    }
  });

  it.for(["README.md", "bench/README.md"])("%s: every relative link leads to a file, every #anchor to a heading", (file) => {
    const markdown = withoutCode(read(file));
    const anchors = new Set(headings(markdown, "#").map((heading) => slug(heading.replace(/^#* /, ""))));
    const targets = [...markdown.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] ?? "");
    for (const target of targets.filter((link) => !/^[a-z]+:/.test(link))) {
      const [file_, anchor] = target.split("#");
      if (file_ !== undefined && file_ !== "") {
        expect(existsSync(path.join(ROOT, path.dirname(file), file_)), `${file} links ${target}`).toBe(true);
      } else {
        expect(anchors, `${file} links ${target}`).toContain(anchor);
      }
    }
  });
});
