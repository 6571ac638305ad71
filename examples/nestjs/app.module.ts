import 'reflect-metadata'; // before any decorated class: emitDecoratorMetadata's output calls Reflect.metadata
import { Controller, Get, Module, Query } from '@nestjs/common';
import { NotesController, NotesService } from './notes.js';

@Controller('api')
export class HelloController {
  @Get('hello')
  hello(@Query('name') name?: string): { message: string } {
    return { message: `Hello, ${name || 'world'}!` };
  }
}

@Module({ controllers: [HelloController, NotesController], providers: [NotesService] })
export class AppModule {}
