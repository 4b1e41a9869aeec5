// A download as Nest's StreamableFile, with errors answered as JSON without the store's paths, and the file
// closed when the client goes away (Nest pipes it; a bare pipe would keep an aborted download's file open).
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { StreamableFile } from '@nestjs/common';

type StreamableFileOptions = NonNullable<ConstructorParameters<typeof StreamableFile>[1]>;

export function streamFile(
  body: Readable,
  opts: StreamableFileOptions,
  what: string,
  res: ServerResponse,
): StreamableFile {
  res.once('close', () => {
    if (!body.destroyed) body.destroy();
  });
  return new StreamableFile(body, opts).setErrorHandler((err, res) => {
    const out = res as unknown as ServerResponse;
    if (out.headersSent) return void out.destroy();
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    if (!missing) console.error(`[api] ${what}:`, err);
    out.statusCode = missing ? 404 : 500;
    out.setHeader('content-type', 'application/json; charset=utf-8');
    out.removeHeader('content-length');
    out.removeHeader('content-disposition');
    out.end(
      JSON.stringify(
        missing
          ? { error: `${what}: the stored file is missing`, code: 'NOT_FOUND' }
          : { error: 'internal error', code: 'INTERNAL_SERVER_ERROR' },
      ),
    );
  });
}
