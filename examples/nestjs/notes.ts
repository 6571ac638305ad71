/**
 * The notes feature: a service injected into its controller by Nest's DI (constructor injection, which needs the
 * `design:paramtypes` metadata that emitDecoratorMetadata writes), a guard that admits only the Windows user IIS
 * authenticated, a parameter decorator that hands that user to a handler, a DTO with a validation pipe, and Nest's
 * built-in ParseIntPipe.
 */
import {
  BadRequestException,
  Body,
  Controller,
  createParamDecorator,
  Get,
  Injectable,
  NotFoundException,
  Param,
  ParseIntPipe,
  Post,
  UnauthorizedException,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type PipeTransform,
} from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { IsapiIncomingMessage, IsapiUser } from 'isapi-http';

/** The request as the Express platform hands it over: the IncomingMessage isapi-http built, with `isapi`. */
type NodeRequest = IncomingMessage & Partial<IsapiIncomingMessage>;

/** What IIS authenticated (AUTH_USER / REMOTE_USER / LOGON_USER); never taken from a request header. */
const userOf = (context: ExecutionContext): IsapiUser | null => context.switchToHttp().getRequest<NodeRequest>().isapi?.user ?? null;

/** Admits requests IIS authenticated; anything else is a 401 (set Windows authentication on the IIS application). */
@Injectable()
export class WindowsUserGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (!userOf(context)) throw new UnauthorizedException('anonymous: enable Windows authentication in IIS');
    return true;
  }
}

/** `@WindowsUser() user: IsapiUser` in a handler behind WindowsUserGuard. */
export const WindowsUser = createParamDecorator((_data: unknown, context: ExecutionContext) => userOf(context));

export class CreateNoteDto {
  text!: string;
  tags!: string[];
}

/** Validates and normalises the body into a CreateNoteDto (a hand-written ValidationPipe: no class-validator here). */
@Injectable()
export class CreateNotePipe implements PipeTransform<unknown, CreateNoteDto> {
  transform(value: unknown): CreateNoteDto {
    const body = (value ?? {}) as { text?: unknown; tags?: unknown };
    const problems: string[] = [];
    if (typeof body.text !== 'string' || body.text.trim() === '') problems.push('text must be a non-empty string');
    if (body.tags !== undefined && !(Array.isArray(body.tags) && body.tags.every((t) => typeof t === 'string'))) problems.push('tags must be an array of strings');
    if (problems.length > 0) throw new BadRequestException(problems);
    const dto = new CreateNoteDto();
    dto.text = (body.text as string).trim();
    dto.tags = (body.tags as string[] | undefined) ?? [];
    return dto;
  }
}

export interface Note {
  id: number;
  text: string;
  tags: string[];
  author: string;
}

@Injectable()
export class NotesService {
  private readonly notes = new Map<number, Note>();
  private nextId = 1;

  create(dto: CreateNoteDto, author: string): Note {
    const note: Note = { id: this.nextId++, text: dto.text, tags: dto.tags, author };
    this.notes.set(note.id, note);
    return note;
  }

  find(id: number): Note | undefined {
    return this.notes.get(id);
  }
}

@Controller('api')
export class NotesController {
  constructor(private readonly notes: NotesService) {}

  @Get('me')
  @UseGuards(WindowsUserGuard)
  me(@WindowsUser() user: IsapiUser): { name: string; authType: string } {
    return { name: user.name, authType: user.authType };
  }

  @Post('notes') // Nest answers a POST with 201
  @UseGuards(WindowsUserGuard)
  create(@Body(CreateNotePipe) dto: CreateNoteDto, @WindowsUser() user: IsapiUser): Note {
    return this.notes.create(dto, user.name);
  }

  @Get('notes/:id')
  find(@Param('id', ParseIntPipe) id: number): Note {
    const note = this.notes.find(id);
    if (!note) throw new NotFoundException(`no note ${id}`);
    return note;
  }
}
