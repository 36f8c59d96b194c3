/**
 * A Postgres array literal (`{"a","b",NULL}`) of `values`, built with one join: what pg's own
 * conversion of a JavaScript array sends, at a fraction of the garbage for arrays of hundreds
 * (pg grows the string one element at a time). Every element is quoted, its backslashes and
 * double quotes escaped; null is SQL NULL. Bound as a parameter (`$1::uuid[]`), never spliced
 * into a statement's text.
 */
export function arrayLiteral(values: readonly (string | number | null)[]): string {
  return `{${values.map(element).join(',')}}`;
}

function element(value: string | number | null): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`arrayLiteral: ${value} is not a finite number`);
    return String(value);
  }
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}
