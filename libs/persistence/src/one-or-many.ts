import type { PipelinedStatement } from './pipelined-statements';

/**
 * A prepared statement over a list, with a form of its own for one element (ADR 0054). For an
 * array parameter (`= ANY($1)`, `unnest($1)`) Postgres's generic plan assumes ten elements and
 * loses to a custom plan, so the array form is planned afresh at almost every execution; a form
 * whose $1 is the element itself keeps its generic plan. Both bind the list (or its element) as $1.
 */
export function oneOrMany(list: unknown[], one: { name: string; text: string }, many: { name: string; text: string }): PipelinedStatement & { name: string; values: unknown[] } {
  return list.length === 1 ? { ...one, values: [list[0]] } : { ...many, values: [list] };
}
