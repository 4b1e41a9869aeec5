// Nest's socket.io adapter with the cluster's adapter set on the server before any namespace exists, so
// /live and /trainers both broadcast through it.
import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';
import type { AdapterFactory } from './index.js';

export class ClusterIoAdapter extends IoAdapter {
  constructor(
    app: INestApplicationContext,
    private readonly factory: AdapterFactory,
  ) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const server = super.createIOServer(port, options) as Server;
    server.adapter(this.factory);
    return server;
  }
}
