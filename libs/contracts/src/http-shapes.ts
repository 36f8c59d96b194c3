import { z } from 'zod';

/**
 * The shapes every HTTP answer of keyward shares, as zod schemas: the one description each shape
 * has. Apps check and type with them, and their OpenAPI documents are generated from them
 * (`openApiSchemas`), so the document cannot drift from what is checked.
 */
export const PROBLEM_SHAPE = z.object({
  code: z.string().meta({ example: 'invalid_key', description: 'Stable code to branch on.' }),
  message: z.string().meta({ example: 'Pleo did not accept this API key.', description: 'What failed, for a person.' }),
  action: z.string().meta({ example: 'Copy the key again from the Pleo installation screen and paste it here.', description: 'What to do next.' }),
});

/** Every refusal's body: `{"error":{code,message,action}}`, with non-secret extra facts beside them. */
export const ERROR_BODY_SHAPE = z.object({ error: PROBLEM_SHAPE });

/** An OpenAPI 3.0 schema object, as the generator writes it. */
export type OpenApiSchema = Record<string, unknown>;

const SAFE_INTEGER_BOUND = Number.MAX_SAFE_INTEGER;

/**
 * OpenAPI 3.0 schemas from zod schemas: one schema, or every schema of a registry (each named by
 * its id, nested registered schemas as `$ref: #/components/schemas/<id>`). What a request may
 * send is documented (`io: 'input'`: a field with a default is optional). A `format` stands for
 * the regular expression zod checks it with, and JavaScript's safe-integer bounds are left out:
 * both are noise to a reader.
 */
export function openApiSchemas(registry: z.core.$ZodRegistry<{ id: string }>): Record<string, OpenApiSchema> {
  const { schemas } = z.toJSONSchema(registry, { ...OPTIONS, uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $id: _id, $schema: _schema, ...rest } = schema as OpenApiSchema;
      return [id, rest];
    }),
  );
}

export function openApiSchema(schema: z.ZodType): OpenApiSchema {
  const { $schema: _schema, ...rest } = z.toJSONSchema(schema, OPTIONS) as OpenApiSchema;
  return rest;
}

function isObjectWithin(schema: z.core.$ZodType): boolean {
  const def = schema._zod.def as { type: string; innerType?: z.core.$ZodType };
  return def.type === 'object' || (def.innerType !== undefined && isObjectWithin(def.innerType));
}

const OPTIONS = {
  target: 'openapi-3.0',
  io: 'input',
  override: ({ zodSchema, jsonSchema }) => {
    // OpenAPI 3.0.3: `nullable` only counts beside a `type`, and a nullable reference has none.
    if (jsonSchema.nullable && jsonSchema.type === undefined && isObjectWithin(zodSchema)) jsonSchema.type = 'object';
    if (jsonSchema.format !== undefined) delete jsonSchema.pattern;
    if (jsonSchema.minimum === -SAFE_INTEGER_BOUND) delete jsonSchema.minimum;
    if (jsonSchema.maximum === SAFE_INTEGER_BOUND) delete jsonSchema.maximum;
  },
} satisfies z.core.ToJSONSchemaParams;
