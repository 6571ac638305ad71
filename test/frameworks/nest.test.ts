/**
 * NestJS 11 on both platforms (Express and Fastify), on the matrix. toRequestListener sees a Nest app
 * (getHttpAdapter + init), runs init() once, then drives the underlying Express app or Fastify instance.
 *
 * No TypeScript decorator syntax: the project's swc config does not enable decorators, so the decorators are applied
 * by calling them, exactly as the compiler would (`Controller()(Cls)`, `Get(path)(proto, key, descriptor)`,
 * `Param('id')(proto, key, index)`). Nothing needs constructor injection, so no design:paramtypes metadata is needed.
 *
 * Nest features used: routing with Param/Query/Body, its own body parsing (Express: body-parser; Fastify: its JSON
 * parser + @fastify/formbody), @Redirect, @Sse (Nest's own event stream), StreamableFile, a global exception filter,
 * useStaticAssets (Express: express.static; Fastify: @fastify/static). Nest has no multipart support of its own on
 * Fastify, so both platforms read uploads with busboy from the raw request.
 */
import 'reflect-metadata';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Body,
  Controller,
  Get,
  HttpCode,
  HttpException,
  Module,
  Param,
  Post,
  Query,
  Redirect,
  Req,
  Res,
  Sse,
  StreamableFile,
  type ArgumentsHost,
  type ExceptionFilter,
  type HttpServer,
  type INestApplication,
  type MessageEvent,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { from, map, type Observable } from 'rxjs';
import { BIG, readMultipart, ticks, type Kit } from './kit.js';
import { frameworkMatrix } from './scenarios.js';

type Platform = 'express' | 'fastify';

/** Express's req/res, or Fastify's request/reply, reduced to what the controller reads. */
interface PlatformRequest extends Partial<IncomingMessage> {
  readonly raw?: IncomingMessage;
  readonly ip: string;
  readonly protocol: string;
}
interface PlatformResponse extends Partial<ServerResponse> {
  readonly raw?: ServerResponse;
  header?(name: string, value: string[]): unknown;
}

/** Apply method decorators the way the compiler does: in reverse order, keeping a returned descriptor. */
function decorate(cls: { prototype: object }, key: string, ...decorators: MethodDecorator[]): void {
  let descriptor = Object.getOwnPropertyDescriptor(cls.prototype, key) as PropertyDescriptor;
  for (const decorator of decorators.reverse()) descriptor = (decorator(cls.prototype, key, descriptor) as PropertyDescriptor | undefined) ?? descriptor;
  Object.defineProperty(cls.prototype, key, descriptor);
}

/** Apply parameter decorators, one per parameter position. */
function params(cls: { prototype: object }, key: string, ...decorators: ParameterDecorator[]): void {
  decorators.forEach((decorator, index) => decorator(cls.prototype, key, index));
}

function controllerFor(kit: Kit, platform: Platform): new () => object {
  class MatrixController {
    user(id: string, q: string | undefined) {
      return { id, q };
    }
    json(body: unknown) {
      return { got: body };
    }
    form(body: unknown) {
      return { got: body };
    }
    upload(req: PlatformRequest) {
      return readMultipart(req.raw ?? (req as IncomingMessage));
    }
    cookies(res: PlatformResponse) {
      const cookies = ['a=1; Path=/', 'b=2; Path=/; HttpOnly'];
      if (platform === 'fastify') res.header?.('set-cookie', cookies);
      else res.setHeader?.('Set-Cookie', cookies);
      return 'cookies';
    }
    redirect() {
      return undefined;
    }
    sse(): Observable<MessageEvent> {
      return from(ticks()).pipe(map((data) => ({ data })));
    }
    boom() {
      throw new Error('boom');
    }
    async async() {
      await sleep(5);
      return { async: true };
    }
    big() {
      return new StreamableFile(BIG, { type: 'application/octet-stream', length: BIG.length });
    }
    abort(res: PlatformResponse) {
      kit.probe.watch(res.raw ?? (res as ServerResponse));
      return new StreamableFile(kit.probe.source(), { type: 'application/octet-stream' });
    }
    whoami(req: PlatformRequest) {
      return { ip: req.ip, protocol: req.protocol };
    }
  }
  const C = MatrixController;
  decorate(C, 'user', Get('users/:id'));
  params(C, 'user', Param('id'), Query('q'));
  // Nest answers POST with 201 by default; the scenarios expect 200.
  decorate(C, 'json', Post('json'), HttpCode(200));
  params(C, 'json', Body());
  decorate(C, 'form', Post('form'), HttpCode(200));
  params(C, 'form', Body());
  decorate(C, 'upload', Post('upload'), HttpCode(200));
  params(C, 'upload', Req());
  decorate(C, 'cookies', Get('cookies'));
  params(C, 'cookies', Res({ passthrough: true }));
  decorate(C, 'redirect', Get('redirect'), Redirect('/target', 302));
  decorate(C, 'sse', Sse('sse'));
  decorate(C, 'boom', Get('boom'));
  decorate(C, 'async', Get('async'));
  decorate(C, 'big', Get('big'));
  decorate(C, 'abort', Get('abort'));
  params(C, 'abort', Res({ passthrough: true }));
  decorate(C, 'whoami', Get('whoami'));
  params(C, 'whoami', Req());
  Controller()(C);
  return C;
}

/** The app's error handler: HttpExceptions (404, ...) keep their answer, anything else is a 500 naming the error. */
class AllErrors implements ExceptionFilter {
  constructor(private readonly adapter: HttpServer) {}
  catch(exception: unknown, host: ArgumentsHost): void {
    const res: unknown = host.switchToHttp().getResponse();
    if (exception instanceof HttpException) return void this.adapter.reply(res, exception.getResponse(), exception.getStatus());
    this.adapter.reply(res, { error: (exception as Error).message }, 500);
  }
}

async function build(kit: Kit, platform: Platform): Promise<INestApplication> {
  class AppModule {}
  Module({ controllers: [controllerFor(kit, platform)] })(AppModule);
  const options = { logger: false, abortOnError: false } as const;
  let app: INestApplication;
  if (platform === 'express') {
    const nest = await NestFactory.create<NestExpressApplication>(AppModule, new ExpressAdapter(), options);
    nest.useStaticAssets(kit.publicDir, { prefix: '/static' });
    app = nest;
  } else {
    const adapter = new FastifyAdapter();
    // Leave multipart bodies unread for busboy (Fastify would answer 415 for an unknown content type).
    adapter.getInstance().addContentTypeParser('multipart/form-data', (_req, _payload, done) => done(null));
    const nest = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, options);
    nest.useStaticAssets({ root: kit.publicDir, prefix: '/static/' });
    app = nest;
  }
  app.useGlobalFilters(new AllErrors(app.getHttpAdapter()));
  kit.onClose(() => app.close());
  return app;
}

frameworkMatrix({ name: 'NestJS 11 (Express platform)', build: (kit) => build(kit, 'express') });
frameworkMatrix({ name: 'NestJS 11 (Fastify platform)', build: (kit) => build(kit, 'fastify') });
