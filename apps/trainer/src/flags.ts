import { type ParseArgsConfig, parseArgs } from 'node:util';
import { HeadbenchInputError } from '@headbench/core';

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>
>;

/** node:util parseArgs for a command, with its errors as input errors that name the flag. */
export function parseFlags<O extends Options>(command: string, args: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new HeadbenchInputError(`${command}: ${(e as Error).message.split('\n')[0]}`);
  }
}
