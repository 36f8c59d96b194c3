'use strict';
// Who may write which table, read from the contract itself: the "owns (single writer)" column of
// the services table in docs/architecture.md, and the table name of each TypeORM entity.
const { readFileSync, readdirSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const CONTRACT = 'docs/architecture.md';
const ENTITIES = 'libs/persistence/src/entities';

/** `{ submissions: 'intake', … }` from the services table of docs/architecture.md. */
function ownersFromContract(markdown = readFileSync(join(ROOT, CONTRACT), 'utf8')) {
  const lines = markdown.split('\n');
  const header = lines.findIndex((line) => line.startsWith('|') && /\|\s*owns\b/.test(line));
  if (header < 0) throw new Error(`${CONTRACT}: no table with an "owns" column; the table-writers lint rule reads table owners from it`);
  const ownsColumn = cells(lines[header]).findIndex((cell) => /^owns\b/.test(cell));
  const owners = {};
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const row = cells(line);
    const service = /`([a-z-]+)`/.exec(row[0])?.[1];
    if (!service) continue;
    for (const [, table] of (row[ownsColumn] ?? '').matchAll(/`([a-z_]+)`/g)) {
      if (owners[table]) throw new Error(`${CONTRACT}: table ${table} has two owners, ${owners[table]} and ${service}`);
      owners[table] = service;
    }
  }
  if (Object.keys(owners).length === 0) throw new Error(`${CONTRACT}: the services table names no owned tables`);
  return owners;
}

function cells(line) {
  return line
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());
}

/** `{ SubmissionEntity: 'submissions', … }` from the `@Entity('…') export class …` pairs. */
function entityTables(dir = join(ROOT, ENTITIES)) {
  const tables = {};
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.entity.ts'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const [, table, entity] of source.matchAll(/@Entity\('([a-z_]+)'\)\s*export class (\w+)/g)) tables[entity] = table;
  }
  return tables;
}

module.exports = { ownersFromContract, entityTables };
