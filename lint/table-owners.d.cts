/** `{ table: owning service }` from the services table of docs/architecture.md. */
export declare function ownersFromContract(markdown?: string): Record<string, string>;
/** `{ EntityClass: table }` from libs/persistence/src/entities. */
export declare function entityTables(dir?: string): Record<string, string>;
