import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** One file of the built Settings page, held in memory. */
export type PageAsset = { body: Buffer; contentType: string; etag: string; immutable: boolean };

export type PageAssets = {
  /** Whether the page was built (`npm run build` writes it to dist/web). */
  readonly built: boolean;
  /** By path below `/portal/`, e.g. `index.html`, `assets/index-3f2a.js`. */
  get(relativePath: string): PageAsset | undefined;
  /** The page's stylesheet, for the server-rendered link pages. */
  readonly stylesheetHref: string | undefined;
};

/**
 * The page's build output. From dist/portal/ (compiled) and from src/portal/ (tests) alike, two
 * levels up is the package root, whose dist/web the build writes.
 */
export const DEFAULT_PAGE_DIR = fileURLToPath(new URL("../../dist/web/", import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json",
};

/**
 * Reads the built page into memory once, at start: a handful of small files. Only files found
 * here are ever served, by exact path, so no request path reaches the file system.
 */
export function loadPageAssets(directory: string = DEFAULT_PAGE_DIR): PageAssets {
  const files = new Map<string, PageAsset>();
  if (existsSync(path.join(directory, "index.html"))) {
    for (const relative of listFiles(directory, "")) {
      const contentType = CONTENT_TYPES[path.extname(relative)];
      if (contentType === undefined) continue;
      const body = readFileSync(path.join(directory, relative));
      files.set(relative, {
        body,
        contentType,
        etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
        // Vite names everything under assets/ by its content hash.
        immutable: relative.startsWith("assets/"),
      });
    }
  }
  const index = files.get("index.html")?.body.toString("utf8");
  const stylesheet = index === undefined ? undefined : /<link rel="stylesheet"[^>]*href="([^"]+)"/.exec(index)?.[1];
  return { built: files.has("index.html"), get: (relative) => files.get(relative), stylesheetHref: stylesheet };
}

function listFiles(root: string, prefix: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(root, prefix))) {
    const relative = prefix === "" ? name : `${prefix}/${name}`;
    if (statSync(path.join(root, relative)).isDirectory()) out.push(...listFiles(root, relative));
    else out.push(relative);
  }
  return out;
}
