import { createServer } from 'node:http';

// Until the NestJS API lands (issue: API), this serves only its health check.
const port = Number(process.env.PORT ?? 4000);
createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, service: 'headbench-api' }));
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: `no route ${req.method} ${req.url}` }));
}).listen(port, () => console.log(`headbench api (health only) on http://127.0.0.1:${port}/health`));
