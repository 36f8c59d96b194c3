import { databaseOfTheBlock } from '@keyward/testing';
import { arrayLiteral } from './array-literal';

/** What Postgres reads back from `arrayLiteral`, bound as a parameter: each value as given. */
describe('arrayLiteral', () => {
  const block = databaseOfTheBlock();
  const query = <R>(text: string, values: unknown[]) => block.dataSource.query<R[]>(text, values);

  it('gives Postgres every text value back as it was, quotes, backslashes, braces, commas and NULL included', async () => {
    const values = ['plain', '', ' spaced ', 'a,b', '{braces}', 'say "hi"', 'back\\slash', '\\"', 'NULL', 'ünïcødé ✓', 'new\nline', null];
    const [row] = await query<{ v: (string | null)[] }>('SELECT $1::text[] AS v', [arrayLiteral(values)]);
    expect(row.v).toEqual(values);
  });

  it('gives numbers and uuids back as their types', async () => {
    const [row] = await query<{ n: number[]; u: string[] }>('SELECT $1::int[] AS n, $2::uuid[] AS u', [arrayLiteral([401, 403, -1]), arrayLiteral(['0b6f3c52-2a7e-4f4e-9a57-3b1cc1a1a8f0', null])]);
    expect(row).toEqual({ n: [401, 403, -1], u: ['0b6f3c52-2a7e-4f4e-9a57-3b1cc1a1a8f0', null] });
  });

  it('is an empty array for no values, and refuses a number Postgres cannot read', () => {
    expect(arrayLiteral([])).toBe('{}');
    expect(() => arrayLiteral([Number.NaN])).toThrow('not a finite number');
  });
});
