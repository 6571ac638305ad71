// Types for app.js, so that TypeScript (app.test.ts, or your own code) sees the Hono app it exports.
import type { Hono } from 'hono';

export function createApp(): Hono;
declare const app: Hono;
export default app;
