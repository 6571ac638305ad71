// The ISAPI constants from httpext.h (and the few winerror.h/windef.h values the protocol uses).
// Values were read from the compiler, see test/fixtures/isapi-abi.json (a copy of shared/reference/isapi-abi.json);
// test/ecb/constants.test.ts checks every one against that file.
// HSE_VERSION_MAJOR is 8 as in the Windows SDK (MinGW says 6): reference/ISAPI.md §13 item 20.

// HSE_general
export const HSE_VERSION_MAJOR = 8;
export const HSE_VERSION_MINOR = 0;
export const HSE_VERSION = 0x80000;
export const HSE_LOG_BUFFER_LEN = 80;
export const HSE_MAX_EXT_DLL_NAME_LEN = 256;

// HSE_STATUS
export const HSE_STATUS_SUCCESS = 1;
export const HSE_STATUS_SUCCESS_AND_KEEP_CONN = 2;
export const HSE_STATUS_PENDING = 3;
export const HSE_STATUS_ERROR = 4;

// HSE_REQ
export const HSE_REQ_BASE = 0;
export const HSE_REQ_SEND_URL_REDIRECT_RESP = 1;
export const HSE_REQ_SEND_URL = 2;
export const HSE_REQ_SEND_RESPONSE_HEADER = 3;
export const HSE_REQ_DONE_WITH_SESSION = 4;
export const HSE_REQ_END_RESERVED = 1000;
export const HSE_REQ_MAP_URL_TO_PATH = 1001;
export const HSE_REQ_GET_SSPI_INFO = 1002;
export const HSE_APPEND_LOG_PARAMETER = 1003;
export const HSE_REQ_IO_COMPLETION = 1005;
export const HSE_REQ_TRANSMIT_FILE = 1006;
export const HSE_REQ_REFRESH_ISAPI_ACL = 1007;
export const HSE_REQ_IS_KEEP_CONN = 1008;
export const HSE_REQ_ASYNC_READ_CLIENT = 1010;
export const HSE_REQ_GET_IMPERSONATION_TOKEN = 1011;
export const HSE_REQ_MAP_URL_TO_PATH_EX = 1012;
export const HSE_REQ_ABORTIVE_CLOSE = 1014;
export const HSE_REQ_GET_CERT_INFO_EX = 1015;
export const HSE_REQ_SEND_RESPONSE_HEADER_EX = 1016;
export const HSE_REQ_CLOSE_CONNECTION = 1017;
export const HSE_REQ_IS_CONNECTED = 1018;
export const HSE_REQ_MAP_UNICODE_URL_TO_PATH = 1023;
export const HSE_REQ_MAP_UNICODE_URL_TO_PATH_EX = 1024;
export const HSE_REQ_EXEC_UNICODE_URL = 1025;
export const HSE_REQ_EXEC_URL = 1026;
export const HSE_REQ_GET_EXEC_URL_STATUS = 1027;
export const HSE_REQ_SEND_CUSTOM_ERROR = 1028;
export const HSE_REQ_IS_IN_PROCESS = 1030;
export const HSE_REQ_REPORT_UNHEALTHY = 1032;
export const HSE_REQ_NORMALIZE_URL = 1033;
export const HSE_REQ_VECTOR_SEND = 1037;
export const HSE_REQ_GET_ANONYMOUS_TOKEN = 1038;
export const HSE_REQ_GET_CACHE_INVALIDATION_CALLBACK = 1040;
export const HSE_REQ_GET_UNICODE_ANONYMOUS_TOKEN = 1041;
export const HSE_REQ_GET_TRACE_INFO = 1042;
export const HSE_REQ_SET_FLUSH_FLAG = 0x413;
export const HSE_REQ_GET_TRACE_INFO_EX = 1044;
export const HSE_REQ_RAISE_TRACE_EVENT = 1045;
export const HSE_REQ_GET_CONFIG_OBJECT = 1046;
export const HSE_REQ_GET_WORKER_PROCESS_SETTINGS = 1047;
export const HSE_REQ_GET_PROTOCOL_MANAGER_CUSTOM_INTERFACE_CALLBACK = 1048;
export const HSE_REQ_CANCEL_IO = 1049;
export const HSE_REQ_GET_CHANNEL_BINDING_TOKEN = 1050;

// HSE_TERM
export const HSE_TERM_ADVISORY_UNLOAD = 1;
export const HSE_TERM_MUST_UNLOAD = 2;

// HSE_IO
export const HSE_IO_SYNC = 1;
export const HSE_IO_ASYNC = 2;
export const HSE_IO_DISCONNECT_AFTER_SEND = 4;
export const HSE_IO_SEND_HEADERS = 8;
export const HSE_IO_NODELAY = 0x1000;
export const HSE_IO_FINAL_SEND = 0x10;
export const HSE_IO_CACHE_RESPONSE = 0x20;
export const HSE_IO_TRY_SKIP_CUSTOM_ERRORS = 0x40;

// HSE_URL_FLAGS
export const HSE_URL_FLAGS_READ = 1;
export const HSE_URL_FLAGS_WRITE = 2;
export const HSE_URL_FLAGS_EXECUTE = 4;
export const HSE_URL_FLAGS_SSL = 8;
export const HSE_URL_FLAGS_DONT_CACHE = 0x10;
export const HSE_URL_FLAGS_NEGO_CERT = 0x20;
export const HSE_URL_FLAGS_REQUIRE_CERT = 0x40;
export const HSE_URL_FLAGS_MAP_CERT = 0x80;
export const HSE_URL_FLAGS_SSL128 = 0x100;
export const HSE_URL_FLAGS_SCRIPT = 0x200;
export const HSE_URL_FLAGS_MASK = 0x3ff;

// HSE_EXEC_URL
export const HSE_EXEC_URL_NO_HEADERS = 2;
export const HSE_EXEC_URL_IGNORE_CURRENT_INTERCEPTOR = 4;
export const HSE_EXEC_URL_IGNORE_VALIDATION_AND_RANGE = 16;
export const HSE_EXEC_URL_DISABLE_CUSTOM_ERROR = 32;
export const HSE_EXEC_URL_SSI_CMD = 64;
export const HSE_EXEC_URL_HTTP_CACHE_ELIGIBLE = 128;

// HSE_VECTOR_ELEMENT_TYPE
export const HSE_VECTOR_ELEMENT_TYPE_MEMORY_BUFFER = 0;
export const HSE_VECTOR_ELEMENT_TYPE_FILE_HANDLE = 1;

// HSE_APP_FLAG
export const HSE_APP_FLAG_IN_PROCESS = 0;
export const HSE_APP_FLAG_ISOLATED_OOP = 1;
export const HSE_APP_FLAG_POOLED_OOP = 2;

// win32_related
export const MAX_PATH = 260;
export const TRUE = 1;
export const FALSE = 0;

// ERROR
export const ERROR_INSUFFICIENT_BUFFER = 122;
export const ERROR_INVALID_INDEX = 1413;
export const ERROR_NO_DATA = 232;
export const ERROR_INVALID_PARAMETER = 87;
export const ERROR_MORE_DATA = 234;
export const ERROR_IO_PENDING = 997;
export const ERROR_INVALID_FUNCTION = 1;
export const ERROR_NOT_SUPPORTED = 50;
export const ERROR_BAD_LENGTH = 24;
export const ERROR_NOT_ENOUGH_MEMORY = 8;
export const ERROR_FILE_NOT_FOUND = 2;
export const ERROR_NETNAME_DELETED = 64;
export const ERROR_OPERATION_ABORTED = 995;
export const ERROR_HANDLE_EOF = 38;
export const ERROR_CONNECTION_ABORTED = 1236;
export const ERROR_INVALID_HANDLE = 6;
export const ERROR_BROKEN_PIPE = 109;

