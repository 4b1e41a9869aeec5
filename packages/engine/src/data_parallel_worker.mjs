// Bootstrap of a data-parallel replica: worker threads do not inherit tsx's loader, and the replica
// (like the rest of the engine) is TypeScript run from source.
import { register } from 'tsx/esm/api';

register();
await import('./data_parallel_worker.ts');
