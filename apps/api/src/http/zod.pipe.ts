// Validates a route's query or a param with a zod schema; problems come back as 400 naming each field.

import { formatIssues } from '@headbench/spec';
import { BadRequestException, type PipeTransform } from '@nestjs/common';
import type { z } from 'zod';

export class ZodPipe<T extends z.ZodType> implements PipeTransform<unknown, z.output<T>> {
  /** `field`: the param's name, for schemas of a single value. */
  constructor(
    private readonly schema: T,
    private readonly field?: string,
  ) {}

  transform(value: unknown): z.output<T> {
    const r = this.schema.safeParse(value);
    if (r.success) return r.data;
    const issues = r.error.issues.map((i) => ({ ...i, path: this.field ? [this.field, ...i.path] : i.path }));
    throw new BadRequestException(formatIssues(issues).join('; '));
  }
}
