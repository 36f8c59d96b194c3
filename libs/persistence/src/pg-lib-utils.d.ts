/** pg's own value conversion for bind parameters (arrays, dates, JSON), as its `Query` uses it; `pg/lib/*` is an exported path of the package. */
declare module 'pg/lib/utils' {
  export function prepareValue(value: unknown): unknown;
}
