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
