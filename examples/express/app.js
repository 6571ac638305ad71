/**
 * A plain Express 5 app: nothing in it knows about ISAPI. `isapi-http serve examples/express/app.js` (or
 * `npm run example`) serves it through the ISAPI path; isapi.js is the same app as an extension module.
 */
import express from 'express';
import { fileURLToPath } from 'node:url';

const app = express();

app.use(express.json({ limit: '1mb' }));
app.use('/static', express.static(fileURLToPath(new URL('./public/', import.meta.url))));

app.get('/', (req, res) => {
  // req.isapi exists when the request came through an ECB (IIS, createServer, inject); not under plain node:http.
  const software = req.isapi?.serverVariable('SERVER_SOFTWARE') ?? 'plain node:http';
  const user = req.isapi?.user?.name ?? 'anonymous';
  res.type('html').send(
    `<!doctype html>
<html>
  <head><title>isapi-http Express example</title></head>
  <body>
    <h1>Express through ISAPI</h1>
    <p>Served via ${software}, as ${user}.</p>
    <ul>
      <li><a href="api/hello?name=IIS">api/hello?name=IIS</a></li>
      <li><a href="static/hello.txt">static/hello.txt</a></li>
      <li>POST JSON to <code>api/echo</code></li>
    </ul>
  </body>
</html>
`,
  );
});

app.get('/api/hello', (req, res) => {
  const name = typeof req.query.name === 'string' && req.query.name !== '' ? req.query.name : 'world';
  res.json({ message: `Hello, ${name}!` });
});

app.post('/api/echo', (req, res) => {
  if (!req.is('application/json')) return res.status(415).json({ error: 'send application/json' });
  res.json({ echo: req.body });
});

export default app;
