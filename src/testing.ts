/**
 * isapi-http/testing: what app authors and our own tests use to run the ISAPI path without IIS.
 */
export { MockEcb, type MockEcbOptions } from './ecb/mock-ecb.js';
export { EmulatedHost, type EmulatedHostOptions, type EmulatedResult, type ExtensionProc, type HostViolation } from './host/emulated-host.js';
export { RequestModel, BodySource, type RequestDescription, type HeaderInput, type BodyInput } from './ecb/request-model.js';
export { renderWire, type RecordedResponse, type RecordedCall, type RenderOptions } from './ecb/recorded-response.js';
export { inject, type InjectRequest, type InjectOptions, type InjectResponse } from './testing/inject.js';
