/**
 * Conversions for values read back from either driver. better-sqlite3 returns integers as
 * numbers; pg returns int8 as text unless the pool installs a parser, so these accept both and
 * refuse anything that would lose precision rather than return a wrong amount.
 */

/** An integer column as a JS number; throws beyond 2^53. */
export function toSafeInteger(value: unknown, column: string): number {
  const number = typeof value === "number" ? value : typeof value === "bigint" || typeof value === "string" ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number)) throw new Error(`Column ${column} holds a value that is not a safe integer`);
  return number;
}

/** A nullable integer column. */
export function toNullableSafeInteger(value: unknown, column: string): number | null {
  return value === null || value === undefined ? null : toSafeInteger(value, column);
}

/** A 0/1 integer column as a boolean. */
export function toBoolean(value: unknown, column: string): boolean {
  const number = toSafeInteger(value, column);
  if (number !== 0 && number !== 1) throw new Error(`Column ${column} holds a value that is not 0 or 1`);
  return number === 1;
}

/** A value from a closed vocabulary; a stored value outside it is corruption, not input. */
export function toMember<T extends string>(value: string, members: readonly T[], column: string): T {
  const member = members.find((candidate) => candidate === value);
  if (member === undefined) throw new Error(`Column ${column} holds a value outside its vocabulary`);
  return member;
}

/** A limit for `LIMIT`: SQLite reads a negative limit as "no limit", so clamp to >= 0. */
export function toRowLimit(limit: number): number {
  return Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0;
}
