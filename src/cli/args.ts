import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidParameterError, invalidParameter } from '../errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs with Lamina's error wording; unknown flags are errors. */
export function parseFlags<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new InvalidParameterError(`${(err as Error).message}\nUsage: ${usage}`, { cause: err });
  }
}

/** A numeric flag: integer-valued unless `allowFraction`, within [min, max]. */
export function numberFlag(name: string, raw: string | undefined, fallback: number | undefined, min: number, max: number, allowFraction = false): number {
  if (raw === undefined) {
    if (fallback === undefined) throw new InvalidParameterError(`Missing required option --${name}`);
    return fallback;
  }
  const value = Number(raw);
  const kind = allowFraction ? 'number' : 'integer';
  if (raw.trim() === '' || !Number.isFinite(value) || (!allowFraction && !Number.isInteger(value)) || value < min || value > max) {
    throw invalidParameter(`--${name}`, `${kind} between ${min} and ${max}`, raw);
  }
  return value;
}
