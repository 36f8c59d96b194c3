import { Socket } from 'node:net';

type WriteMethods = Record<'_write' | '_writev', (this: Socket, ...args: unknown[]) => unknown>;

/**
 * The socket writes the process makes while `work` runs. A round trip to Postgres is one: pg
 * writes a query at once, and a pipeline of several statements too (`pipelined`).
 */
export async function socketWritesDuring<T>(work: () => Promise<T>): Promise<{ result: T; writes: number }> {
  const methods = Socket.prototype as unknown as WriteMethods;
  const original = { _write: methods._write, _writev: methods._writev };
  let writes = 0;
  for (const key of ['_write', '_writev'] as const) {
    methods[key] = function (this: Socket, ...args: unknown[]) {
      writes += 1;
      return original[key].apply(this, args);
    };
  }
  try {
    const result = await work();
    return { result, writes };
  } finally {
    methods._write = original._write;
    methods._writev = original._writev;
  }
}
