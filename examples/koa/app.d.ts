// Types for app.js, so that TypeScript (app.test.ts, or your own code) sees the Koa app it exports.
import type Koa from 'koa';

export function createApp(): Koa;
declare const app: Koa;
export default app;
