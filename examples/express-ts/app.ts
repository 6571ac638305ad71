/**
 * An Express 5 app written in TypeScript: typed route parameters and bodies, an error middleware, a JSON 404.
 * Nothing in it depends on ISAPI at run time; `req.isapi` is read through a typed helper and is absent under plain
 * node:http. isapi.ts turns it into an extension module.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { IsapiIncomingMessage, IsapiRequestInfo } from 'isapi-http';

/** What IIS told the extension about this request; undefined when the request did not come through an ECB. */
export const isapiOf = (req: Request): IsapiRequestInfo | undefined => (req as Request & Partial<IsapiIncomingMessage>).isapi;

export interface Todo {
  id: number;
  title: string;
  done: boolean;
  owner: string;
}

interface NewTodo {
  title?: unknown;
  done?: unknown;
}

/** A 4xx the error middleware turns into `{ error }`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function createApp(): express.Express {
  const todos = new Map<number, Todo>();
  let nextId = 1;
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '100kb' }));

  app.get('/api/hello', (req: Request<Record<string, string>, unknown, unknown, { name?: string }>, res: Response) => {
    res.json({ message: `Hello, ${req.query.name || 'world'}!` });
  });

  // The Windows user IIS authenticated (AUTH_USER / REMOTE_USER / LOGON_USER), never a header the client sent.
  app.get('/api/me', (req, res) => {
    const user = isapiOf(req)?.user;
    if (!user) return void res.status(401).json({ error: 'anonymous: enable Windows authentication in IIS' });
    res.json({ name: user.name, authType: user.authType });
  });

  app.post('/api/todos', (req: Request<Record<string, string>, Todo, NewTodo>, res: Response<Todo>) => {
    const { title, done = false } = req.body ?? {};
    if (typeof title !== 'string' || title.trim() === '') throw new HttpError(400, 'title must be a non-empty string');
    if (typeof done !== 'boolean') throw new HttpError(400, 'done must be a boolean');
    const todo: Todo = { id: nextId++, title: title.trim(), done, owner: isapiOf(req)?.user?.name ?? 'anonymous' };
    todos.set(todo.id, todo);
    res.status(201).location(`/api/todos/${todo.id}`).json(todo);
  });

  app.get('/api/todos/:id', (req: Request<{ id: string }>, res: Response<Todo>) => {
    const todo = todos.get(Number(req.params.id));
    if (!todo) throw new HttpError(404, `no todo ${req.params.id}`);
    res.json(todo);
  });

  app.get('/api/boom', () => {
    throw new Error('something broke');
  });

  app.use((req, res) => void res.status(404).json({ error: 'not found', path: req.path }));

  // Express 5 sends errors thrown by handlers (sync or async) here; body-parser's 400 for bad JSON has `status` too.
  app.use((error: Error & { status?: number }, req: Request, res: Response, _next: NextFunction) => {
    const status = error.status ?? 500;
    if (status >= 500) console.error(`${req.method} ${req.originalUrl} failed:`, error);
    res.status(status).json({ error: status < 500 ? error.message : 'internal error' });
  });
  return app;
}

const app = createApp();
export default app;
