/**
 * isapi-http: serve Node.js web apps as IIS ISAPI extensions.
 * The root entry point: every HSE_* constant, the Ecb contract and NativeEcb, and the library's errors.
 */
export * from './ecb/constants.js';
export { IsapiError, ErrorCodes, type ErrorCode } from './errors.js';
export type {
  Ecb,
  ServerVariableResult,
  IoCallback,
  SendHeadersOptions,
  UrlMapEx,
  CertInfo,
  VectorElement,
  VectorSendOptions,
  TransmitFileOptions,
  ExecUrlOptions,
  ExecUrlStatus,
} from './ecb/ecb.js';
export { NativeEcb } from './ecb/native-ecb.js';
export { UNKNOWN_LENGTH, DEFAULT_READ_AHEAD } from './ecb/request-model.js';
export { releaseIoCompletion } from './ecb/io-completion.js';
export { createExtension, type IsapiExtension, type ExtensionOptions } from './handlers/create-extension.js';
export { SimpleHandler, type SimpleHandlerOptions } from './handlers/simple-handler.js';
export type { IsapiHandler } from './handlers/handler.js';
export type { NativeEntryPoints } from './ecb/entry-points.js';
export type { RequestListener, IsapiIncomingMessage, ExchangeOptions } from './http/exchange.js';
export type { IsapiRequestInfo, IsapiUser } from './http/request-info.js';
export { toRequestListener, type AppLike, type FetchHandler, type ToRequestListenerOptions } from './handlers/to-request-listener.js';
export { ThreadPoolHandler, type ThreadPoolHandlerOptions, type ReloadEvent, type WatchOption, type PoolErrorKind } from './handlers/thread-pool-handler.js';
export { createServer, IsapiServer, type IsapiRequestListener, type AccessLogEntry, type AccessListener } from './host/dev-server.js';
export type { IsapiServerOptions, HandlerKind } from './host/server-options.js';
export { HttpParseError } from './host/http-request-parser.js';
export { createTraceChannel, TraceChannel, type TraceChannelOptions, type TraceStats } from './trace/channel.js';
export { runTraceCollector, type TraceCollectorOptions, type TraceCollectorResult } from './trace/collector.js';
export { TRACE_LEVELS, type TraceLevel } from './trace/levels.js';
export type { TraceRecord, TraceError, TraceSource, TraceFields } from './trace/record.js';
export type { TraceFileOptions } from './trace/file-sink.js';
export type { CaptureOptions } from './trace/capture.js';
export type { TraceTarget } from './trace/request-trace.js';
export type { ExtensionTraceOption } from './trace/host-trace.js';
export { traceEndpoint, defaultTraceName } from './trace/endpoint.js';
export { formatRecord } from './trace/format.js';
