/**
 * The NestJS app: NestFactory.create on the Express platform (@nestjs/platform-express). Not listened on: isapi-http
 * runs Nest's init() once, before the first request, and hands each request to the underlying Express app.
 */
import type { NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';

/** `logger: false` in tests; the default logs Nest's start-up (modules, mapped routes) and its errors. */
export async function createApp(logger?: NestApplicationOptions['logger']): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule, { abortOnError: false, ...(logger !== undefined ? { logger } : {}) });
  app.disable('x-powered-by'); // the underlying Express app's setting
  return app;
}
