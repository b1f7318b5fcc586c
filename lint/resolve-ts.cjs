// eslint-import-resolver interface v2: resolves the project's `./x.js` specifiers to the `./x.ts`
// sources they are compiled from, so the layer rules see which file an import names.
const fs = require("node:fs");
const path = require("node:path");
const { builtinModules } = require("node:module");

exports.interfaceVersion = 2;

exports.resolve = function resolve(source, file) {
  if (source.startsWith("node:") || builtinModules.includes(source)) return { found: true, path: null };
  if (!source.startsWith(".")) {
    try {
      return { found: true, path: require.resolve(source, { paths: [path.dirname(file)] }) };
    } catch {
      return { found: false };
    }
  }
  const target = path.resolve(path.dirname(file), source);
  const candidates = [target, target.replace(/\.js$/, ".ts"), target.replace(/\.js$/, ".d.ts"), `${target}.ts`];
  for (const candidate of candidates) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return { found: true, path: candidate };
  }
  return { found: false };
};
