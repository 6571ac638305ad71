/**
 * Types for the frameworks installed under npm aliases (package.json devDependencies), so that two majors can be
 * tested side by side. Each alias borrows the types of the current major; the differences the tests rely on are
 * small and are handled where they are used. express, koa, fastify, hapi, hono and NestJS have their own types.
 */
declare module 'express4' {
  import e from 'express';
  export = e;
}

declare module 'koa2' {
  import Koa from 'koa';
  export = Koa;
}
