/**
 * Names the API's schemas in the OpenAPI document. Route schemas are written inline (TypeBox
 * values shared between routes); every one that carries a `title` is moved to
 * `components.schemas[title]` and replaced by a `$ref`, so the document, and the typed client
 * generated from it, name `ApiKey`, `UsageReport`, `Error` … instead of repeating anonymous
 * shapes. Two different schemas under one title are a bug, and stop the start.
 */
export function nameSchemaComponents<T extends object>(document: T): T {
  const doc = document as { paths?: unknown; components?: { schemas?: Record<string, unknown> } };
  const named = new Map<string, { schema: unknown; text: string }>();

  function visit(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(visit);
    if (value === null || typeof value !== "object") return value;
    const entries = Object.entries(value).map(([key, child]) => [key, visit(child)] as const);
    const copy = Object.fromEntries(entries) as Record<string, unknown>;
    const title = copy.title;
    if (typeof title !== "string" || !/^[A-Z][A-Za-z0-9]*$/.test(title) || copy.type !== "object") return copy;
    const text = JSON.stringify(copy);
    const existing = named.get(title);
    if (existing === undefined) named.set(title, { schema: copy, text });
    else if (existing.text !== text) throw new Error(`OpenAPI: two different schemas are titled ${title}`);
    return { $ref: `#/components/schemas/${title}` };
  }

  const paths = visit(doc.paths);
  const schemas: Record<string, unknown> = { ...doc.components?.schemas };
  for (const [title, { schema }] of [...named].sort(([a], [b]) => a.localeCompare(b))) schemas[title] = schema;
  return { ...document, paths, components: { ...doc.components, schemas } };
}
