'use strict';
// keyward's own lint rules: the architecture contract's boundaries (docs/architecture.md, ADR 0030).
const { dirname, join, relative, resolve, sep } = require('node:path');

const ROOT = join(__dirname, '..');
const ALIAS = '@keyward/';

/** `{ kind: 'app', name: 'intake' }` or `{ kind: 'lib', name: '@keyward/messaging' }` for a path under the repository root. */
function areaOf(absolutePath) {
  const [top, name] = relative(ROOT, absolutePath).split(sep);
  if (top === 'apps' && name) return { kind: 'app', name };
  if (top === 'libs' && name) return { kind: 'lib', name: ALIAS + name };
  return null;
}

/** The file an import names, or null for a package. */
function resolveImport(fromFile, specifier) {
  if (specifier.startsWith('.')) return resolve(dirname(fromFile), specifier);
  if (specifier.startsWith(ALIAS)) return join(ROOT, 'libs', specifier.slice(ALIAS.length));
  return null;
}

const importBoundaries = {
  meta: {
    type: 'problem',
    docs: { description: 'Libraries never import apps; an app never imports another app.' },
    schema: [
      {
        type: 'object',
        properties: { allow: { type: 'array', items: { type: 'string' }, description: 'apps that may be imported all the same' } },
        additionalProperties: false,
      },
    ],
    messages: {
      libImportsApp: '{{from}} is a library and imports the app {{to}}: a library never depends on an app; move what both need into a library.',
      appImportsApp: 'The app {{from}} imports the app {{to}}: apps talk through events and the tables they own, never through each other’s code; move what both need into a library.',
    },
  },
  create(context) {
    const from = areaOf(context.filename);
    if (!from) return {};
    const allow = new Set(context.options[0]?.allow ?? []);
    const check = (node) => {
      if (!node || node.type !== 'Literal' || typeof node.value !== 'string') return;
      const target = resolveImport(context.filename, node.value);
      const to = target && areaOf(target);
      if (!to || to.kind !== 'app' || allow.has(to.name)) return;
      if (from.kind === 'lib') context.report({ node, messageId: 'libImportsApp', data: { from: from.name, to: to.name } });
      else if (from.name !== to.name) context.report({ node, messageId: 'appImportsApp', data: { from: from.name, to: to.name } });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
      TSExternalModuleReference: (node) => check(node.expression),
      'CallExpression[callee.name="require"]': (node) => check(node.arguments[0]),
    };
  },
};

const IDENT = '"?([a-z_][a-z0-9_]*)"?';
const SQL_WRITES = [
  new RegExp(`\\binsert\\s+into\\s+${IDENT}`, 'gi'),
  new RegExp(`\\bdelete\\s+from\\s+${IDENT}`, 'gi'),
  new RegExp(`\\btruncate\\s+(?:table\\s+)?${IDENT}`, 'gi'),
  // `UPDATE t [AS] [alias] SET`, but not `ON CONFLICT … DO UPDATE SET` (the INSERT's own table).
  new RegExp(`(?<!\\bdo\\s+)\\bupdate\\s+${IDENT}(?:\\s+(?:as\\s+)?[a-z_][a-z0-9_]*)?\\s+set\\b`, 'gi'),
];
const NOT_TABLES = new Set(['set', 'of', 'skip', 'nowait', 'only']);
const REPOSITORY_WRITES = new Set(['save', 'insert', 'update', 'upsert', 'delete', 'remove', 'softDelete', 'softRemove', 'restore', 'increment', 'decrement', 'clear']);

function sqlTables(text) {
  const tables = new Set();
  for (const pattern of SQL_WRITES) for (const [, table] of text.matchAll(pattern)) if (!NOT_TABLES.has(table.toLowerCase())) tables.add(table.toLowerCase());
  return tables;
}

const tableWriters = {
  meta: {
    type: 'problem',
    docs: { description: 'Only a table’s owner (docs/architecture.md) writes it, in SQL or through a TypeORM repository.' },
    schema: [
      {
        type: 'object',
        properties: {
          owners: { type: 'object', additionalProperties: { type: 'string' }, description: 'table → the service that owns it' },
          libraryTables: { type: 'object', additionalProperties: { type: 'string' }, description: 'table → the library every service writes it through' },
          entities: { type: 'object', additionalProperties: { type: 'string' }, description: 'entity class → table' },
        },
        required: ['owners'],
        additionalProperties: false,
      },
    ],
    messages: {
      unowned: 'Table {{table}} has no owner in docs/architecture.md: name it in its owner’s row of the services table.',
      notOwner: 'Table {{table}} is owned by {{owner}} (docs/architecture.md): only its owner writes it; {{writer}} may read it.',
      notThroughLibrary: 'Table {{table}} is written only through {{library}}.',
    },
  },
  create(context) {
    const writer = areaOf(context.filename);
    if (!writer) return {};
    const { owners, libraryTables = {}, entities = {} } = context.options[0];
    const check = (node, table) => {
      const library = libraryTables[table];
      if (library) {
        if (library !== writer.name) context.report({ node, messageId: 'notThroughLibrary', data: { table, library } });
      } else if (!owners[table]) context.report({ node, messageId: 'unowned', data: { table } });
      else if (owners[table] !== writer.name) context.report({ node, messageId: 'notOwner', data: { table, owner: owners[table], writer: writer.name } });
    };
    const checkSql = (node, text) => {
      for (const table of sqlTables(text)) check(node, table);
    };
    const entityTable = (node) => (node?.type === 'Identifier' ? entities[node.name] : undefined);
    return {
      Literal: (node) => typeof node.value === 'string' && checkSql(node, node.value),
      TemplateLiteral: (node) => checkSql(node, node.quasis.map((quasi) => quasi.value.cooked ?? quasi.value.raw).join(' $0 ')),
      CallExpression(node) {
        const callee = node.callee;
        if (callee.type !== 'MemberExpression' || callee.property.type !== 'Identifier' || !REPOSITORY_WRITES.has(callee.property.name)) return;
        // dataSource.getRepository(Entity).save(…) and manager.save(Entity, …)
        const viaRepository =
          callee.object.type === 'CallExpression' &&
          callee.object.callee.type === 'MemberExpression' &&
          callee.object.callee.property.type === 'Identifier' &&
          callee.object.callee.property.name === 'getRepository' &&
          entityTable(callee.object.arguments[0]);
        const table = viaRepository || entityTable(node.arguments[0]);
        if (table) check(node, table);
      },
    };
  },
};

module.exports = {
  meta: { name: 'keyward' },
  rules: { 'import-boundaries': importBoundaries, 'table-writers': tableWriters },
};
