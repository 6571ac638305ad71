/*
 * The C reference host: plays IIS for isapi-http's tests.
 *
 * It builds EXTENSION_CONTROL_BLOCKs in C memory with the real x64 layout, implements the four server
 * callbacks (GetServerVariable, WriteClient, ReadClient, ServerSupportFunction) with IIS semantics, and calls a
 * JS-registered HttpExtensionProc from its own threads, exactly as IIS's thread pool does
 * (shared/reference/koffi.md Experiment 2, ISAPI.md §5-§11).
 *
 * Build (test/native/c-host.ts does this):  cc -O2 -shared -fPIC -pthread -std=gnu11 -Wall -Wextra -Werror
 *                                              -DPIN_SELF -Wl,-z,nodelete -o libisapihost-<hash>.so host.c
 *
 * C API (all exported, cdecl; the ECB callbacks are WINAPI):
 *   request setup   host_request_new, host_request_set_field, host_request_add_var, host_request_set_body,
 *                   host_request_set_options, host_request_ecb, host_request_free
 *   request setup   host_request_set_faults (kill switches, below)
 *   running         host_run, host_run_ex, host_run_opts (blocking: call them through koffi's .async(), never synchronously from
 *                   the JS thread that registered the proc: koffi.md 3(c) deadlock)
 *   the loader      host_gate_new, host_gate_free, host_gate_stats, host_gate_wait, host_start_extension,
 *                   host_terminate (the blocking ones, through .async() too)
 *   results         host_result_bytes, host_result_int, host_result_list_count, host_result_list_item
 *   misc            host_last_error, host_thread_id, host_ecb_layout, host_pinned
 *
 * Last error: every callback that returns FALSE sets the Win32 code in a thread-local (host_last_error()) AND in
 * errno (koffi.errno() reads errno as saved right after a call on POSIX), and SetLastError on Windows.
 *
 * Rule violations are counted per request, never fatal:
 *   USE_AFTER_DONE  any callback on an ECB whose session ended (DONE_WITH_SESSION called, proc returned a
 *                   non-PENDING status, or the host timed out waiting): FALSE + ERROR_INVALID_HANDLE (6).
 *                   The memory stays valid until host_request_free, so this is detectable, not a crash.
 *   ASYNC_OVERLAP   a second I/O (async WriteClient, ASYNC_READ_CLIENT, or a sync Read/WriteClient) while an
 *                   async operation is outstanding: FALSE + ERROR_INVALID_PARAMETER (87). Not ERROR_IO_PENDING
 *                   (997): overlapped-I/O-minded callers read 997 as "queued", and would wait for a completion
 *                   that never comes. 87 is what a server answers to a request it refuses (mod_isapi).
 *   HEADERS_TWICE   SEND_RESPONSE_HEADER(_EX) after headers were sent: FALSE + 87, the first headers stay.
 *   DONE_TWICE      a second DONE_WITH_SESSION: FALSE + 6 (counted here only, not also as USE_AFTER_DONE).
 *
 * Policies (the host's choices where IIS leaves room): writes after HSE_REQ_CLOSE_CONNECTION fail with
 * ERROR_NETNAME_DELETED (64), as on a closed socket; CLOSE_CONNECTION completes a pending async read with 64 and
 * cbIO 0 (ISAPI.md §9); a pending async write completes normally. An async op needs a registered completion
 * routine, else FALSE + 87. HSE_REQ_SEND_URL (2) is treated as SEND_URL_REDIRECT_RESP (1), as documented.
 *
 * Running: host_run calls the proc for each request from `threads` host threads (0 = on the calling thread) that
 * take requests from a shared index. A thread is not blocked by HSE_STATUS_PENDING (IIS frees its thread too);
 * after the proc calls, host_run waits for every pending request's DONE_WITH_SESSION and then for its outstanding
 * async I/O (completions included), each up to the request's timeout counted from when its proc returned.
 * Async I/O is served by host-owned I/O threads that sleep async_delay_us and only THEN touch the caller's
 * memory, like real overlapped I/O; they are joined before host_run returns. host_run_ex adds a gate (below) and
 * `interval_us`, a pause each host thread takes before its next request (client arrival rate; 0 = none);
 * host_run_opts adds flags: HOST_RUN_CLOSED_LOOP makes each host thread wait for its request's session end before
 * the next (one client per thread). Each request records when a host thread took it and when its session ended
 * (CLOCK_MONOTONIC ns; RI_ISSUE_NS, RI_END_NS): the latency the host sees.
 *
 * THE LOADER CONTRACT (docs/native-host.md). A gate (host_gate_new) plays the part of the Node loader DLL that IIS
 * would load: every call into JS made by host_run_ex with a gate, host_start_extension and host_terminate goes
 * through it. States:
 *     LOADED ──GetExtensionVersion TRUE──▶ ACCEPTING ──host_terminate──▶ DRAINING ──drained or timeout──▶ CLOSING
 *     ──in-flight JS calls 0──▶ TERMINATED (the JS TerminateExtension is called once, then nothing calls JS again)
 *   - accepting + in-flight counter: gate_enter/gate_leave bracket every call into JS (HttpExtensionProc, IO
 *     completion routines, GetExtensionVersion). The counter and the state change under one lock, so no call can
 *     slip in between "stop" and "in flight == 0".
 *   - cap: at most max_js_calls calls into JS at once (a counting semaphore: a mutex, a counter and a condition
 *     variable). Excess host threads WAIT; they never reach koffi, whose max_async_calls overflow crashes the
 *     process (koffi.md 3c). max_js_calls must be below max_async_calls (CHost checks it).
 *   - not accepting (LOADED, DRAINING, CLOSING, TERMINATED): HttpExtensionProc is answered natively, without JS,
 *     through the ECB's own functions: SEND_RESPONSE_HEADER_EX "503 Service Unavailable" (Content-Length,
 *     Retry-After: 1, fKeepConn FALSE), a sync WriteClient of "Service Unavailable\n", DONE_WITH_SESSION
 *     (HSE_STATUS_SUCCESS), then HSE_STATUS_PENDING: the sequence the library's respondDirect uses. The request
 *     records why (RI_REFUSED) so tests can tell a native 503 from one the extension sent.
 *   - completion routines are still delivered in DRAINING (sessions in flight need them); in CLOSING and
 *     TERMINATED they are refused (the op completes without calling JS) and counted.
 *   - host_terminate: DRAINING, wait until in-flight JS calls are 0 AND every session that entered JS has ended
 *     AND no async op is outstanding (or timeout_ms), CLOSING, wait for in-flight calls to reach 0 (up to another
 *     timeout_ms; a JS thread that never returns them is stuck), TERMINATED, then call the JS TerminateExtension
 *     once from the calling thread (call host_terminate through koffi's .async so the JS thread stays free).
 *   - counters (host_gate_stats): calls into JS by kind, the peak of concurrent calls, cap waits, refusals by
 *     reason, completions refused, and a trip-wire: calls into JS made while TERMINATED (must stay 0).
 *
 * KILL SWITCHES for fault tests (per request):
 *   abort_after       (host_request_set_options) the client stops sending the body after N bytes: ReadClient
 *                     returns TRUE with 0 bytes, IS_CONNECTED answers FALSE.
 *   async_delay_us    (host_request_set_options) delays every async completion by that much.
 *   drop_after        (host_request_set_faults) the client disconnects once N response body bytes went out:
 *                     the write that crosses N delivers only the bytes up to N; a sync WriteClient then fails with
 *                     ERROR_NETNAME_DELETED (64); an async one completes with ERROR_OPERATION_ABORTED (995) and
 *                     cbIO = the bytes that went out; later writes and headers fail at once with 64; reads give
 *                     0 bytes (an async read completes with 995); IS_CONNECTED answers FALSE. 0 = drop at the
 *                     first body byte; -1 = never.
 *   fail_var          (host_request_set_faults) GetServerVariable of this name (case-insensitive) fails with
 *                     fail_var_error (default ERROR_INVALID_PARAMETER, 87).
 */
#if !defined(_WIN32) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------------------ */
/* Platform shim: threads, locks, condition variables, TLS, last error, clocks, export/calling-convention.       */
/* ------------------------------------------------------------------------------------------------------------ */
#ifdef _WIN32
#include <windows.h>
#define HOST_EXPORT __declspec(dllexport)
typedef SRWLOCK host_mutex_t;
typedef CONDITION_VARIABLE host_cond_t;
typedef HANDLE host_thread_t;
#ifdef _MSC_VER
#define HOST_TLS __declspec(thread)
#else
#define HOST_TLS _Thread_local /* mingw gcc ignores __declspec(thread) */
#endif
static void mutex_init(host_mutex_t *m) { InitializeSRWLock(m); }
static void mutex_destroy(host_mutex_t *m) { (void)m; }
static void mutex_lock(host_mutex_t *m) { AcquireSRWLockExclusive(m); }
static void mutex_unlock(host_mutex_t *m) { ReleaseSRWLockExclusive(m); }
static void cond_init(host_cond_t *c) { InitializeConditionVariable(c); }
static void cond_destroy(host_cond_t *c) { (void)c; }
static void cond_broadcast(host_cond_t *c) { WakeAllConditionVariable(c); }
static void cond_signal(host_cond_t *c) { WakeConditionVariable(c); }
static uint64_t now_us(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (uint64_t)(c.QuadPart / f.QuadPart) * 1000000u + (uint64_t)(c.QuadPart % f.QuadPart) * 1000000u / (uint64_t)f.QuadPart;
}
static uint64_t now_ns(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (uint64_t)(c.QuadPart / f.QuadPart) * 1000000000u + (uint64_t)(c.QuadPart % f.QuadPart) * 1000000000u / (uint64_t)f.QuadPart;
}
/* Wait until `deadline_us` (now_us clock), or forever when 0. */
static void cond_wait_until(host_cond_t *c, host_mutex_t *m, uint64_t deadline_us) {
  DWORD ms = INFINITE;
  if (deadline_us) {
    uint64_t n = now_us();
    ms = deadline_us > n ? (DWORD)((deadline_us - n + 999) / 1000) : 0;
  }
  SleepConditionVariableSRW(c, m, ms, 0);
}
#define THREAD_RET DWORD WINAPI
#define THREAD_RET_VALUE 0
static int thread_start(host_thread_t *t, LPTHREAD_START_ROUTINE fn, void *arg) {
  *t = CreateThread(NULL, 0, fn, arg, 0, NULL);
  return *t ? 0 : -1;
}
static void thread_join(host_thread_t t) {
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}
static uint64_t current_tid(void) { return (uint64_t)GetCurrentThreadId(); }
static void set_os_last_error(uint32_t code) { SetLastError(code); }
static void sleep_us(uint32_t us) { Sleep((us + 999) / 1000); }
#else
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef PIN_SELF
#include <dlfcn.h>
#endif
#define HOST_EXPORT __attribute__((visibility("default")))
/* __stdcall matters on ia32 only; empty on x86_64 Linux (and ignored by the x64 compilers anyway). */
#if defined(__i386__)
#define WINAPI __attribute__((stdcall))
#else
#define WINAPI
#endif
typedef int32_t BOOL;
typedef uint32_t DWORD;
#define TRUE 1
#define FALSE 0
typedef pthread_mutex_t host_mutex_t;
typedef pthread_cond_t host_cond_t;
typedef pthread_t host_thread_t;
#define HOST_TLS _Thread_local
static void mutex_init(host_mutex_t *m) { pthread_mutex_init(m, NULL); }
static void mutex_destroy(host_mutex_t *m) { pthread_mutex_destroy(m); }
static void mutex_lock(host_mutex_t *m) { pthread_mutex_lock(m); }
static void mutex_unlock(host_mutex_t *m) { pthread_mutex_unlock(m); }
static void cond_init(host_cond_t *c) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(c, &a);
  pthread_condattr_destroy(&a);
}
static void cond_destroy(host_cond_t *c) { pthread_cond_destroy(c); }
static void cond_broadcast(host_cond_t *c) { pthread_cond_broadcast(c); }
static void cond_signal(host_cond_t *c) { pthread_cond_signal(c); }
static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
/* The same clock in ns: the request timestamps (RI_ISSUE_NS, RI_END_NS). On Linux this is process.hrtime's clock. */
static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static void cond_wait_until(host_cond_t *c, host_mutex_t *m, uint64_t deadline_us) {
  if (!deadline_us) {
    pthread_cond_wait(c, m);
    return;
  }
  struct timespec ts;
  ts.tv_sec = (time_t)(deadline_us / 1000000u);
  ts.tv_nsec = (long)(deadline_us % 1000000u) * 1000L;
  pthread_cond_timedwait(c, m, &ts);
}
#define THREAD_RET void *
#define THREAD_RET_VALUE NULL
static int thread_start(host_thread_t *t, void *(*fn)(void *), void *arg) { return pthread_create(t, NULL, fn, arg); }
static void thread_join(host_thread_t t) { pthread_join(t, NULL); }
static uint64_t current_tid(void) {
#ifdef SYS_gettid
  return (uint64_t)syscall(SYS_gettid);
#else
  return (uint64_t)(uintptr_t)pthread_self();
#endif
}
static void set_os_last_error(uint32_t code) { (void)code; }
static void sleep_us(uint32_t us) {
  struct timespec ts;
  ts.tv_sec = (time_t)(us / 1000000u);
  ts.tv_nsec = (long)(us % 1000000u) * 1000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}
#endif

/* ------------------------------------------------------------------------------------------------------------ */
/* ISAPI ABI (httpext.h), ISAPI.md §1-§3.                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */
#define HSE_VERSION 0x80000u
#define HSE_LOG_BUFFER_LEN 80
#define HSE_STATUS_SUCCESS 1u
#define HSE_STATUS_PENDING 3u
#define HSE_STATUS_ERROR 4u
#define HSE_IO_ASYNC 2u

#define HSE_REQ_SEND_URL_REDIRECT_RESP 1u
#define HSE_REQ_SEND_URL 2u
#define HSE_REQ_SEND_RESPONSE_HEADER 3u
#define HSE_REQ_DONE_WITH_SESSION 4u
#define HSE_APPEND_LOG_PARAMETER 1003u
#define HSE_REQ_IO_COMPLETION 1005u
#define HSE_REQ_IS_KEEP_CONN 1008u
#define HSE_REQ_ASYNC_READ_CLIENT 1010u
#define HSE_REQ_SEND_RESPONSE_HEADER_EX 1016u
#define HSE_REQ_CLOSE_CONNECTION 1017u
#define HSE_REQ_IS_CONNECTED 1018u
#define HSE_REQ_REPORT_UNHEALTHY 1032u
#define HSE_REQ_SET_FLUSH_FLAG 1043u

#define ERROR_INVALID_HANDLE 6u
#define ERROR_NETNAME_DELETED 64u
#define ERROR_INVALID_PARAMETER 87u
#define ERROR_INSUFFICIENT_BUFFER 122u
#define ERROR_NO_DATA 232u
#define ERROR_INVALID_INDEX 1413u
#define ERROR_OPERATION_ABORTED 995u

#define UNKNOWN_LENGTH 0xFFFFFFFFu

typedef struct EXTENSION_CONTROL_BLOCK EXTENSION_CONTROL_BLOCK;
typedef BOOL(WINAPI *PFN_GSV)(void *hConn, char *lpszVariableName, void *lpvBuffer, DWORD *lpdwSize);
typedef BOOL(WINAPI *PFN_WC)(void *ConnID, void *Buffer, DWORD *lpdwBytes, DWORD dwReserved);
typedef BOOL(WINAPI *PFN_RC)(void *ConnID, void *lpvBuffer, DWORD *lpdwSize);
typedef BOOL(WINAPI *PFN_SSF)(void *hConn, DWORD dwHSERequest, void *lpvBuffer, DWORD *lpdwSize, DWORD *lpdwDataType);
typedef DWORD(WINAPI *PFN_HTTPEXTENSIONPROC)(EXTENSION_CONTROL_BLOCK *pECB);
typedef void(WINAPI *PFN_HSE_IO_COMPLETION)(EXTENSION_CONTROL_BLOCK *pECB, void *pContext, DWORD cbIO, DWORD dwError);

#define HSE_MAX_EXT_DLL_NAME_LEN 256
typedef struct {
  DWORD dwExtensionVersion;
  char lpszExtensionDesc[HSE_MAX_EXT_DLL_NAME_LEN];
} HSE_VERSION_INFO;
typedef BOOL(WINAPI *PFN_GETEXTENSIONVERSION)(HSE_VERSION_INFO *pVer);
typedef BOOL(WINAPI *PFN_TERMINATEEXTENSION)(DWORD dwFlags);

struct EXTENSION_CONTROL_BLOCK {
  DWORD cbSize;
  DWORD dwVersion;
  void *ConnID;
  DWORD dwHttpStatusCode;
  char lpszLogData[HSE_LOG_BUFFER_LEN];
  char *lpszMethod;
  char *lpszQueryString;
  char *lpszPathInfo;
  char *lpszPathTranslated;
  DWORD cbTotalBytes;
  DWORD cbAvailable;
  uint8_t *lpbData;
  char *lpszContentType;
  PFN_GSV GetServerVariable;
  PFN_WC WriteClient;
  PFN_RC ReadClient;
  PFN_SSF ServerSupportFunction;
};

typedef struct {
  const char *pszStatus;
  const char *pszHeader;
  DWORD cchStatus;
  DWORD cchHeader;
  BOOL fKeepConn;
} HSE_SEND_HEADER_EX_INFO;

#if defined(__x86_64__) || defined(_M_X64) || defined(__aarch64__) || defined(_M_ARM64)
_Static_assert(sizeof(EXTENSION_CONTROL_BLOCK) == 192, "x64 ECB is 192 bytes (ISAPI.md §1)");
_Static_assert(offsetof(EXTENSION_CONTROL_BLOCK, dwHttpStatusCode) == 16, "dwHttpStatusCode at 16");
_Static_assert(offsetof(EXTENSION_CONTROL_BLOCK, lpszLogData) == 20, "lpszLogData at 20");
_Static_assert(offsetof(EXTENSION_CONTROL_BLOCK, lpszMethod) == 104, "lpszMethod at 104 (4-byte hole)");
_Static_assert(offsetof(EXTENSION_CONTROL_BLOCK, cbTotalBytes) == 136, "cbTotalBytes at 136");
_Static_assert(offsetof(EXTENSION_CONTROL_BLOCK, lpbData) == 144, "lpbData at 144");
_Static_assert(offsetof(EXTENSION_CONTROL_BLOCK, GetServerVariable) == 160, "GetServerVariable at 160");
_Static_assert(offsetof(EXTENSION_CONTROL_BLOCK, ServerSupportFunction) == 184, "ServerSupportFunction at 184");
_Static_assert(sizeof(HSE_SEND_HEADER_EX_INFO) == 32, "HSE_SEND_HEADER_EX_INFO is 32 bytes on x64");
#elif defined(__i386__) || defined(_M_IX86)
_Static_assert(sizeof(EXTENSION_CONTROL_BLOCK) == 144, "ia32 ECB is 144 bytes (ISAPI.md §1)");
_Static_assert(offsetof(EXTENSION_CONTROL_BLOCK, ServerSupportFunction) == 140, "ServerSupportFunction at 140");
#endif

/* ------------------------------------------------------------------------------------------------------------ */
/* Last error                                                                                                    */
/* ------------------------------------------------------------------------------------------------------------ */
static HOST_TLS uint32_t t_last_error;

static BOOL fail(uint32_t code) {
  t_last_error = code;
  errno = (int)code;
  set_os_last_error(code);
  return FALSE;
}

HOST_EXPORT uint32_t host_last_error(void) { return t_last_error; }
HOST_EXPORT uint64_t host_thread_id(void) { return current_tid(); }

/* ------------------------------------------------------------------------------------------------------------ */
/* Requests                                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */
#define REQ_MAGIC 0x49534150u /* 'ISAP' */

enum { FIELD_METHOD, FIELD_QUERY, FIELD_PATH_INFO, FIELD_PATH_TRANSLATED, FIELD_CONTENT_TYPE, FIELD_COUNT };
enum { V_USE_AFTER_DONE, V_ASYNC_OVERLAP, V_HEADERS_TWICE, V_DONE_TWICE, V_COUNT };
enum { OP_WRITE, OP_READ };

typedef struct {
  char *name;
  uint8_t *value;
  uint32_t len;
  int no_data;
} var_t;

typedef struct {
  uint8_t *data;
  size_t len, cap;
} bytes_t;

typedef struct {
  char **items;
  uint32_t *lens;
  uint32_t count, cap;
} strlist_t;

struct run;
struct hreq;
struct gate;

typedef struct io_op {
  struct io_op *next;
  struct hreq *req;
  int kind;
  void *buf; /* the caller's memory: read (write op) or filled (read op) only when the op runs */
  uint32_t size;
  uint64_t due_us;
  int cancelled; /* protected by req->mu */
} io_op_t;

typedef struct hreq {
  EXTENSION_CONTROL_BLOCK ecb; /* first: ECB address == request address */
  uint32_t magic;
  host_mutex_t mu;
  host_cond_t cv;
  struct run *run;

  char *fields[FIELD_COUNT];
  var_t *vars;
  uint32_t nvars, capvars;

  /* body as the client sends it; lpbData points at its first cbAvailable bytes */
  uint8_t *body;
  uint32_t body_len;
  uint32_t read_pos;
  int64_t abort_after; /* -1 = never */

  /* options */
  int keep_conn;
  uint32_t async_delay_us;
  uint32_t timeout_ms;

  /* recorded */
  char *status;
  uint32_t status_len;
  char *headers;
  uint32_t headers_len;
  int headers_sent;
  int keep_conn_sent; /* -1 none */
  bytes_t out;
  uint32_t http_status;
  char log_data[HSE_LOG_BUFFER_LEN];
  uint32_t log_data_len;
  int64_t done_status; /* -1 = NULL or never */
  uint32_t done_count;
  int64_t proc_result; /* -1 = not called */
  int closed;
  int flush_flag;
  char *redirect;
  uint32_t redirect_len;
  strlist_t unhealthy;
  strlist_t log_params;
  uint32_t violations[V_COUNT];
  int timed_out;
  uint64_t proc_tid;
  int32_t proc_worker;
  uint64_t completion_tid;
  uint32_t completions;
  uint64_t proc_return_us;
  uint64_t issue_ns; /* a host thread took the request and is about to call in (before the gate): now_ns */
  uint64_t end_ns;   /* the session ended (DONE_WITH_SESSION, a non-PENDING return, or a timeout): now_ns */

  /* kill switches (host_request_set_faults) */
  int64_t drop_after; /* -1 = never */
  int dropped;        /* the client went away mid-response */
  char *fail_var;     /* NULL = none */
  uint32_t fail_var_error;

  /* the loader (gate) */
  struct gate *gate;  /* set when the proc entered JS through a gate: the session counts as open there */
  int refused;        /* REFUSED_*: answered natively without calling JS */
  uint32_t completions_refused;

  /* session state */
  int ended;
  int pending;   /* proc returned HSE_STATUS_PENDING */
  io_op_t *op;   /* outstanding async op (at most one) */
  uint32_t io_inflight; /* completion routines currently running */
  PFN_HSE_IO_COMPLETION completion;
  void *completion_ctx;
} hreq_t;

typedef struct run {
  PFN_HTTPEXTENSIONPROC proc;
  hreq_t **reqs;
  uint32_t n;
  uint32_t next; /* shared index, under mu */
  host_mutex_t mu;
  host_cond_t cv;
  io_op_t *queue;
  int stopping;
  struct gate *gate;    /* NULL: call the proc directly (host_run) */
  uint32_t interval_us; /* pause before each host thread's next request */
  uint32_t flags;       /* HOST_RUN_* */
} run_t;

/* host_run_opts flags. CLOSED_LOOP: a host thread waits for its request's session to end (DONE_WITH_SESSION or a
 * non-PENDING return; up to the request's timeout) before it takes the next one, as one keep-alive client per host
 * thread would: `threads` requests in flight at most. Without it a thread moves on at HSE_STATUS_PENDING (IIS frees
 * its thread too), and a run is an open-loop flood of all n requests. */
#define HOST_RUN_CLOSED_LOOP 1u

/* ------------------------------------------------------------------------------------------------------------ */
/* The gate: what a Node loader DLL must do around every call into JS (docs/native-host.md)                      */
/* ------------------------------------------------------------------------------------------------------------ */
#define GATE_MAGIC 0x47415445u /* 'GATE' */

enum { GATE_LOADED, GATE_ACCEPTING, GATE_DRAINING, GATE_CLOSING, GATE_TERMINATED };
enum { CALL_PROC, CALL_COMPLETION, CALL_START };
enum { REFUSED_NONE, REFUSED_NOT_STARTED, REFUSED_DRAINING, REFUSED_TERMINATED, REFUSED_COUNT };

typedef struct gate {
  uint32_t magic;
  host_mutex_t mu;
  host_cond_t cv;      /* state and counter changes: drain waiters, host_gate_wait */
  host_cond_t cap_cv;  /* threads waiting at the cap: one is woken per freed place, all on a state change */
  int state;
  uint32_t max_js;     /* the cap: concurrent calls into JS */
  uint32_t inflight;   /* calls into JS right now */
  uint32_t peak;       /* the most ever in flight at once */
  uint32_t open_sessions; /* sessions that entered JS and have not ended */
  uint32_t ops;        /* async ops of those sessions not yet completed */
  uint64_t proc_calls, completion_calls, start_calls, term_calls;
  uint64_t cap_waits;  /* calls that had to wait at the cap */
  uint64_t refused[REFUSED_COUNT];
  uint64_t completions_refused;
  uint64_t calls_after_terminate; /* trip-wire: must stay 0 */
  uint64_t sessions_opened;
} gate_t;

static gate_t *gate_of(void *p) {
  gate_t *g = (gate_t *)p;
  return g && g->magic == GATE_MAGIC ? g : NULL;
}

/* May a call of this kind enter JS in this state? */
static int gate_allows(int state, int kind) {
  switch (kind) {
    case CALL_PROC: return state == GATE_ACCEPTING;
    case CALL_COMPLETION: return state == GATE_ACCEPTING || state == GATE_DRAINING;
    default: return state == GATE_LOADED || state == GATE_ACCEPTING; /* CALL_START */
  }
}

/*
 * Enter JS: 1 = go (the caller MUST call gate_leave after the call returns), 0 = refused (*why says why, for a
 * proc). The state check, the cap and the in-flight increment happen under one lock, so host_terminate, which
 * changes the state under the same lock, never sees "in flight 0" while a call is on its way in.
 */
static int gate_enter(gate_t *g, int kind, int *why) {
  int waited = 0;
  mutex_lock(&g->mu);
  for (;;) {
    if (!gate_allows(g->state, kind)) {
      if (kind == CALL_PROC) {
        int reason = g->state == GATE_LOADED ? REFUSED_NOT_STARTED : g->state == GATE_TERMINATED ? REFUSED_TERMINATED : REFUSED_DRAINING;
        g->refused[reason]++;
        if (why) *why = reason;
      } else if (kind == CALL_COMPLETION) {
        g->completions_refused++;
      }
      mutex_unlock(&g->mu);
      return 0;
    }
    if (g->inflight < g->max_js) break;
    if (!waited) {
      waited = 1;
      g->cap_waits++;
    }
    cond_wait_until(&g->cap_cv, &g->mu, 0); /* the cap: wait here, never in koffi */
  }
  g->inflight++;
  if (g->inflight > g->peak) g->peak = g->inflight;
  if (kind == CALL_PROC) {
    g->proc_calls++;
    g->open_sessions++;
    g->sessions_opened++;
  } else if (kind == CALL_COMPLETION) {
    g->completion_calls++;
  } else {
    g->start_calls++;
  }
  if (g->state == GATE_TERMINATED) g->calls_after_terminate++; /* unreachable by construction: a trip-wire */
  mutex_unlock(&g->mu);
  return 1;
}

static void gate_leave(gate_t *g) {
  mutex_lock(&g->mu);
  g->inflight--;
  cond_signal(&g->cap_cv);
  cond_broadcast(&g->cv);
  mutex_unlock(&g->mu);
}

/* A state change: every thread waiting at the cap re-checks whether it may still enter. */
static void gate_set_state(gate_t *g, int state) {
  g->state = state;
  cond_broadcast(&g->cap_cv);
  cond_broadcast(&g->cv);
}

static void gate_session_end(gate_t *g) {
  mutex_lock(&g->mu);
  g->open_sessions--;
  cond_broadcast(&g->cv);
  mutex_unlock(&g->mu);
}

static void gate_ops(gate_t *g, int delta) {
  mutex_lock(&g->mu);
  g->ops = (uint32_t)((int64_t)g->ops + delta);
  cond_broadcast(&g->cv);
  mutex_unlock(&g->mu);
}

static BOOL WINAPI h_get_server_variable(void *hConn, char *name, void *buf, DWORD *size);
static BOOL WINAPI h_write_client(void *hConn, void *buf, DWORD *bytes, DWORD flags);
static BOOL WINAPI h_read_client(void *hConn, void *buf, DWORD *size);
static BOOL WINAPI h_server_support_function(void *hConn, DWORD req, void *buf, DWORD *size, DWORD *type);

static char *dup_bytes(const void *p, size_t n) {
  char *s = (char *)malloc(n + 1);
  if (!s) return NULL;
  if (n) memcpy(s, p, n);
  s[n] = 0;
  return s;
}

static size_t bounded_strlen(const char *s, size_t max) {
  size_t n = 0;
  while (n < max && s[n]) n++;
  return n;
}

static int bytes_append(bytes_t *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    uint8_t *d = (uint8_t *)realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static void strlist_add(strlist_t *l, const char *s, size_t n) {
  if (l->count == l->cap) {
    uint32_t cap = l->cap ? l->cap * 2 : 4;
    char **items = (char **)realloc(l->items, cap * sizeof(char *));
    if (!items) return;
    l->items = items;
    uint32_t *lens = (uint32_t *)realloc(l->lens, cap * sizeof(uint32_t));
    if (!lens) return;
    l->lens = lens;
    l->cap = cap;
  }
  l->items[l->count] = dup_bytes(s, n);
  l->lens[l->count] = (uint32_t)n;
  l->count++;
}

static void strlist_free(strlist_t *l) {
  for (uint32_t i = 0; i < l->count; i++) free(l->items[i]);
  free(l->items);
  free(l->lens);
}

HOST_EXPORT void *host_request_new(void) {
  hreq_t *r = (hreq_t *)calloc(1, sizeof(hreq_t));
  if (!r) return NULL;
  r->magic = REQ_MAGIC;
  mutex_init(&r->mu);
  cond_init(&r->cv);
  r->abort_after = -1;
  r->drop_after = -1;
  r->fail_var_error = ERROR_INVALID_PARAMETER;
  r->timeout_ms = 30000;
  r->keep_conn_sent = -1;
  r->done_status = -1;
  r->proc_result = -1;
  r->proc_worker = -1;
  static const char empty[1] = {0};
  for (int i = 0; i < FIELD_COUNT; i++) r->fields[i] = dup_bytes(empty, 0);
  r->body = (uint8_t *)malloc(1);

  EXTENSION_CONTROL_BLOCK *e = &r->ecb;
  e->cbSize = (DWORD)sizeof(EXTENSION_CONTROL_BLOCK);
  e->dwVersion = HSE_VERSION;
  e->ConnID = r;
  e->dwHttpStatusCode = 200;
  e->lpszMethod = r->fields[FIELD_METHOD];
  e->lpszQueryString = r->fields[FIELD_QUERY];
  e->lpszPathInfo = r->fields[FIELD_PATH_INFO];
  e->lpszPathTranslated = r->fields[FIELD_PATH_TRANSLATED];
  e->lpszContentType = r->fields[FIELD_CONTENT_TYPE];
  e->lpbData = r->body;
  e->GetServerVariable = h_get_server_variable;
  e->WriteClient = h_write_client;
  e->ReadClient = h_read_client;
  e->ServerSupportFunction = h_server_support_function;
  return r;
}

/** Set an ECB string field (0 method, 1 query, 2 path info, 3 path translated, 4 content type) from bytes. */
HOST_EXPORT int host_request_set_field(void *req, uint32_t which, const uint8_t *bytes, uint32_t len) {
  hreq_t *r = (hreq_t *)req;
  if (!r || which >= FIELD_COUNT || (len && !bytes)) return -1;
  char *s = dup_bytes(bytes, len);
  if (!s) return -1;
  free(r->fields[which]);
  r->fields[which] = s;
  EXTENSION_CONTROL_BLOCK *e = &r->ecb;
  e->lpszMethod = r->fields[FIELD_METHOD];
  e->lpszQueryString = r->fields[FIELD_QUERY];
  e->lpszPathInfo = r->fields[FIELD_PATH_INFO];
  e->lpszPathTranslated = r->fields[FIELD_PATH_TRANSLATED];
  e->lpszContentType = r->fields[FIELD_CONTENT_TYPE];
  return 0;
}

/** Add a server variable: its bytes WITHOUT the terminator, or no_data != 0 for "exists, no data" (232). */
HOST_EXPORT int host_request_add_var(void *req, const char *name, const uint8_t *value, uint32_t len, int32_t no_data) {
  hreq_t *r = (hreq_t *)req;
  if (!r || !name || (len && !value)) return -1;
  if (r->nvars == r->capvars) {
    uint32_t cap = r->capvars ? r->capvars * 2 : 64;
    var_t *v = (var_t *)realloc(r->vars, cap * sizeof(var_t));
    if (!v) return -1;
    r->vars = v;
    r->capvars = cap;
  }
  var_t *v = &r->vars[r->nvars++];
  v->name = dup_bytes(name, strlen(name));
  v->value = (uint8_t *)dup_bytes(value, len);
  v->len = len;
  v->no_data = no_data != 0;
  return 0;
}

/**
 * The body the client sends (copied), cbTotalBytes as announced (0xFFFFFFFF = unknown) and the read-ahead:
 * cbAvailable = min(read_ahead, body_len), lpbData = its first bytes; ReadClient serves the rest, then 0.
 */
HOST_EXPORT int host_request_set_body(void *req, const uint8_t *data, uint32_t len, uint32_t total_bytes, uint32_t read_ahead) {
  hreq_t *r = (hreq_t *)req;
  if (!r || (len && !data)) return -1;
  uint8_t *b = (uint8_t *)malloc(len ? len : 1);
  if (!b) return -1;
  if (len) memcpy(b, data, len);
  free(r->body);
  r->body = b;
  r->body_len = len;
  uint32_t avail = read_ahead < len ? read_ahead : len;
  if (total_bytes != UNKNOWN_LENGTH && avail > total_bytes) avail = total_bytes;
  r->read_pos = avail;
  r->ecb.cbTotalBytes = total_bytes;
  r->ecb.cbAvailable = avail;
  r->ecb.lpbData = b;
  return 0;
}

/** keep_conn: what HSE_REQ_IS_KEEP_CONN answers; abort_after: the client disconnects after this many body bytes (-1 never). */
HOST_EXPORT int host_request_set_options(void *req, int32_t keep_conn, uint32_t async_delay_us, uint32_t timeout_ms, int64_t abort_after) {
  hreq_t *r = (hreq_t *)req;
  if (!r) return -1;
  r->keep_conn = keep_conn != 0;
  r->async_delay_us = async_delay_us;
  r->timeout_ms = timeout_ms ? timeout_ms : 30000;
  r->abort_after = abort_after;
  return 0;
}

/**
 * Kill switches (see the header): drop_after = the client disconnects once this many response body bytes went out
 * (-1 never); fail_var = a GetServerVariable name that fails with fail_var_error (NULL none; error 0 = 87).
 */
HOST_EXPORT int host_request_set_faults(void *req, int64_t drop_after, const char *fail_var, uint32_t fail_var_error) {
  hreq_t *r = (hreq_t *)req;
  if (!r) return -1;
  r->drop_after = drop_after < 0 ? -1 : drop_after;
  free(r->fail_var);
  r->fail_var = fail_var && *fail_var ? dup_bytes(fail_var, strlen(fail_var)) : NULL;
  r->fail_var_error = fail_var_error ? fail_var_error : ERROR_INVALID_PARAMETER;
  return 0;
}

HOST_EXPORT void *host_request_ecb(void *req) { return req ? &((hreq_t *)req)->ecb : NULL; }

HOST_EXPORT void host_request_free(void *req) {
  hreq_t *r = (hreq_t *)req;
  if (!r) return;
  r->magic = 0;
  for (int i = 0; i < FIELD_COUNT; i++) free(r->fields[i]);
  for (uint32_t i = 0; i < r->nvars; i++) {
    free(r->vars[i].name);
    free(r->vars[i].value);
  }
  free(r->vars);
  free(r->body);
  free(r->status);
  free(r->headers);
  free(r->out.data);
  free(r->redirect);
  free(r->fail_var);
  strlist_free(&r->unhealthy);
  strlist_free(&r->log_params);
  free(r->op);
  mutex_destroy(&r->mu);
  cond_destroy(&r->cv);
  free(r);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Session helpers (call with r->mu held)                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

/* The connection as the host sees it: NULL / not ours → NULL (the caller fails with 87). */
static hreq_t *conn_of(void *hConn) {
  hreq_t *r = (hreq_t *)hConn;
  if (!r || r->magic != REQ_MAGIC) return NULL;
  return r;
}

/* Snapshot what the ECB says when the session ends. */
static void end_session(hreq_t *r) {
  if (r->ended) return;
  r->ended = 1;
  r->end_ns = now_ns();
  r->http_status = r->ecb.dwHttpStatusCode;
  size_t n = bounded_strlen(r->ecb.lpszLogData, HSE_LOG_BUFFER_LEN);
  memcpy(r->log_data, r->ecb.lpszLogData, n);
  r->log_data_len = (uint32_t)n;
  cond_broadcast(&r->cv);
  if (r->gate) gate_session_end(r->gate); /* lock order: r->mu, then gate->mu (never the reverse) */
}

static uint32_t body_limit(const hreq_t *r) {
  uint32_t limit = r->body_len;
  if (r->abort_after >= 0 && (uint64_t)r->abort_after < limit) limit = (uint32_t)r->abort_after;
  return limit;
}

/* Copy up to `want` remaining body bytes into buf; returns the count (0 at the end or after an abort). */
static uint32_t take_body(hreq_t *r, void *buf, uint32_t want) {
  if (r->dropped) return 0;
  uint32_t limit = body_limit(r);
  uint32_t left = r->read_pos < limit ? limit - r->read_pos : 0;
  uint32_t n = want < left ? want : left;
  if (n) memcpy(buf, r->body + r->read_pos, n);
  r->read_pos += n;
  return n;
}

static int client_connected(const hreq_t *r) {
  if (r->closed || r->dropped) return 0;
  uint32_t limit = body_limit(r);
  int short_body = limit < r->body_len || (r->ecb.cbTotalBytes != UNKNOWN_LENGTH && limit < r->ecb.cbTotalBytes);
  return !(short_body && r->read_pos >= limit);
}

static int icase_prefix(const char *s, const char *prefix) {
  for (; *prefix; s++, prefix++) {
    char a = *s, b = *prefix;
    if (a >= 'a' && a <= 'z') a = (char)(a - 32);
    if (a != b) return 0;
  }
  return 1;
}

static int icase_equal(const char *a, const char *b) {
  for (;; a++, b++) {
    char x = *a, y = *b;
    if (x >= 'a' && x <= 'z') x = (char)(x - 32);
    if (y >= 'a' && y <= 'z') y = (char)(y - 32);
    if (x != y) return 0;
    if (!x) return 1;
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The I/O threads                                                                                               */
/* ------------------------------------------------------------------------------------------------------------ */

static void queue_op(run_t *run, io_op_t *op) {
  mutex_lock(&run->mu);
  op->next = run->queue;
  run->queue = op;
  cond_broadcast(&run->cv);
  mutex_unlock(&run->mu);
}

/* Start an async op (r->mu held): the checks common to async WriteClient and ASYNC_READ_CLIENT. */
static BOOL start_async(hreq_t *r, int kind, void *buf, uint32_t size) {
  if (r->op) {
    r->violations[V_ASYNC_OVERLAP]++;
    return fail(ERROR_INVALID_PARAMETER);
  }
  if (!r->completion || !r->run) return fail(ERROR_INVALID_PARAMETER);
  io_op_t *op = (io_op_t *)calloc(1, sizeof(io_op_t));
  if (!op) return fail(ERROR_INVALID_PARAMETER);
  op->req = r;
  op->kind = kind;
  op->buf = buf;
  op->size = size;
  op->due_us = now_us() + r->async_delay_us;
  r->op = op;
  if (r->gate) gate_ops(r->gate, +1);
  queue_op(r->run, op);
  return TRUE;
}

/* Append a response body write, honouring drop_after: returns the bytes that went out; sets r->dropped when the
 * client went away during (or before) this write. */
static uint32_t deliver(hreq_t *r, const void *buf, uint32_t size) {
  if (r->dropped) return 0;
  uint32_t n = size;
  if (r->drop_after >= 0 && (uint64_t)r->out.len + size > (uint64_t)r->drop_after) {
    n = (uint64_t)r->out.len < (uint64_t)r->drop_after ? (uint32_t)((uint64_t)r->drop_after - r->out.len) : 0;
    r->dropped = 1;
  }
  if (n && bytes_append(&r->out, buf, n) != 0) return 0;
  return n;
}

static void run_op(io_op_t *op) {
  hreq_t *r = op->req; /* op->due_us has passed: the async_delay_us sleep happened in the queue */
  mutex_lock(&r->mu);
  uint32_t cb = 0, err = 0;
  if (op->cancelled) {
    err = ERROR_NETNAME_DELETED;
  } else if (r->dropped) {
    err = ERROR_OPERATION_ABORTED; /* the client went away before this op ran */
  } else if (op->kind == OP_WRITE) {
    /* Only now read the caller's memory, as real async I/O does. */
    cb = deliver(r, op->buf, op->size);
    if (r->dropped) err = ERROR_OPERATION_ABORTED;
  } else {
    cb = take_body(r, op->buf, op->size);
  }
  r->op = NULL;
  r->io_inflight++;
  PFN_HSE_IO_COMPLETION fn = r->completion;
  void *ctx = r->completion_ctx;
  gate_t *g = r->gate;
  mutex_unlock(&r->mu);
  free(op);
  /* Through the gate: delivered while ACCEPTING or DRAINING (sessions in flight need their completions), refused
   * once CLOSING. Waiting at the cap happens here, holding no request lock. */
  int go = fn && (!g || gate_enter(g, CALL_COMPLETION, NULL));
  mutex_lock(&r->mu);
  if (go) {
    r->completion_tid = current_tid();
    r->completions++;
  } else if (fn) {
    r->completions_refused++;
  }
  mutex_unlock(&r->mu);
  if (go) {
    fn(&r->ecb, ctx, cb, err);
    if (g) gate_leave(g);
  }
  mutex_lock(&r->mu);
  r->io_inflight--;
  cond_broadcast(&r->cv);
  mutex_unlock(&r->mu);
  if (g) gate_ops(g, -1);
}

static THREAD_RET io_thread(void *arg) {
  run_t *run = (run_t *)arg;
  mutex_lock(&run->mu);
  for (;;) {
    io_op_t **best = NULL;
    for (io_op_t **p = &run->queue; *p; p = &(*p)->next) {
      if (!best || (*p)->due_us < (*best)->due_us) best = p;
    }
    if (!best) {
      if (run->stopping) break;
      cond_wait_until(&run->cv, &run->mu, 0);
      continue;
    }
    uint64_t now = now_us();
    if ((*best)->due_us > now) {
      cond_wait_until(&run->cv, &run->mu, (*best)->due_us);
      continue;
    }
    io_op_t *op = *best;
    *best = op->next;
    mutex_unlock(&run->mu);
    run_op(op);
    mutex_lock(&run->mu);
  }
  mutex_unlock(&run->mu);
  return THREAD_RET_VALUE;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The four ECB callbacks                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

/* Lock the request behind hConn, or fail: 87 for a bad handle; after the session ended, 6 and a violation
 * (DONE_TWICE for a repeated DONE_WITH_SESSION, USE_AFTER_DONE for anything else). */
#define ENTER_CALL(r, hConn, is_done)                                                         \
  hreq_t *r = conn_of(hConn);                                                                 \
  if (!r) return fail(ERROR_INVALID_PARAMETER);                                               \
  mutex_lock(&r->mu);                                                                         \
  if (r->ended) {                                                                             \
    if (is_done) r->done_count++;                                                             \
    r->violations[(is_done) && r->done_count > 1 ? V_DONE_TWICE : V_USE_AFTER_DONE]++;        \
    LEAVE(r, fail(ERROR_INVALID_HANDLE));                                                     \
  }
#define ENTER(r, hConn) ENTER_CALL(r, hConn, 0)

/* Unlock and return; a failure's code is put back in errno / GetLastError after the unlock, so nothing in
 * between can clobber what koffi.errno() reads. */
#define LEAVE(r, value)                  \
  do {                                   \
    BOOL v_ = (value);                   \
    mutex_unlock(&r->mu);                \
    if (!v_) {                           \
      errno = (int)t_last_error;         \
      set_os_last_error(t_last_error);   \
    }                                    \
    return v_;                           \
  } while (0)

static BOOL WINAPI h_get_server_variable(void *hConn, char *name, void *buf, DWORD *size) {
  ENTER(r, hConn);
  if (!name || !size) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
  const var_t *v = NULL;
  for (uint32_t i = 0; i < r->nvars; i++) {
    if (icase_equal(r->vars[i].name, name)) {
      v = &r->vars[i];
      break;
    }
  }
  if (r->fail_var && icase_equal(r->fail_var, name)) LEAVE(r, fail(r->fail_var_error)); /* kill switch */
  if (!v) LEAVE(r, fail(ERROR_INVALID_INDEX));
  if (v->no_data) LEAVE(r, fail(ERROR_NO_DATA));
  uint32_t term = icase_prefix(name, "UNICODE_") ? 2 : 1;
  uint32_t need = v->len + term;
  if (!buf || *size < need) {
    *size = need;
    LEAVE(r, fail(ERROR_INSUFFICIENT_BUFFER));
  }
  if (v->len) memcpy(buf, v->value, v->len);
  memset((uint8_t *)buf + v->len, 0, term);
  *size = need;
  LEAVE(r, TRUE);
}

static BOOL WINAPI h_write_client(void *hConn, void *buf, DWORD *bytes, DWORD flags) {
  ENTER(r, hConn);
  if (!bytes || (*bytes && !buf)) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
  if (r->closed || r->dropped) LEAVE(r, fail(ERROR_NETNAME_DELETED));
  if (flags & HSE_IO_ASYNC) LEAVE(r, start_async(r, OP_WRITE, buf, *bytes));
  if (r->op) {
    r->violations[V_ASYNC_OVERLAP]++;
    LEAVE(r, fail(ERROR_INVALID_PARAMETER));
  }
  if (r->drop_after < 0) {
    if (bytes_append(&r->out, buf, *bytes) != 0) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
    LEAVE(r, TRUE);
  }
  deliver(r, buf, *bytes);
  LEAVE(r, r->dropped ? fail(ERROR_NETNAME_DELETED) : TRUE);
}

static BOOL WINAPI h_read_client(void *hConn, void *buf, DWORD *size) {
  ENTER(r, hConn);
  if (!size || (*size && !buf)) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
  if (r->op) {
    r->violations[V_ASYNC_OVERLAP]++;
    LEAVE(r, fail(ERROR_INVALID_PARAMETER));
  }
  *size = take_body(r, buf, *size);
  LEAVE(r, TRUE);
}

static void record_headers(hreq_t *r, const char *status, size_t status_len, const char *headers, size_t headers_len, int keep) {
  r->status = dup_bytes(status, status_len);
  r->status_len = (uint32_t)status_len;
  r->headers = dup_bytes(headers ? headers : "", headers ? headers_len : 0);
  r->headers_len = headers ? (uint32_t)headers_len : 0;
  r->keep_conn_sent = keep;
  r->headers_sent = 1;
}

static BOOL WINAPI h_server_support_function(void *hConn, DWORD req, void *buf, DWORD *size, DWORD *type) {
  ENTER_CALL(r, hConn, req == HSE_REQ_DONE_WITH_SESSION);
  switch (req) {
    case HSE_REQ_IO_COMPLETION:
      /* The routine travels in lpvBuffer, its context (pointer-sized) in lpdwDataType (ISAPI.md §9). */
      r->completion = (PFN_HSE_IO_COMPLETION)buf;
      r->completion_ctx = (void *)type;
      LEAVE(r, TRUE);

    case HSE_REQ_SEND_RESPONSE_HEADER_EX: {
      const HSE_SEND_HEADER_EX_INFO *info = (const HSE_SEND_HEADER_EX_INFO *)buf;
      if (!info) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
      if (r->dropped) LEAVE(r, fail(ERROR_NETNAME_DELETED));
      if (r->headers_sent) {
        r->violations[V_HEADERS_TWICE]++;
        LEAVE(r, fail(ERROR_INVALID_PARAMETER));
      }
      const char *st = info->pszStatus ? info->pszStatus : "200 OK";
      size_t st_len = info->pszStatus ? bounded_strlen(info->pszStatus, info->cchStatus) : 6;
      size_t hd_len = info->pszHeader ? bounded_strlen(info->pszHeader, info->cchHeader) : 0;
      record_headers(r, st, st_len, info->pszHeader, hd_len, info->fKeepConn);
      LEAVE(r, TRUE);
    }

    case HSE_REQ_SEND_RESPONSE_HEADER: {
      /* Deprecated form: status in lpvBuffer (NULL = "200 OK"), headers in lpdwDataType. */
      if (r->dropped) LEAVE(r, fail(ERROR_NETNAME_DELETED));
      if (r->headers_sent) {
        r->violations[V_HEADERS_TWICE]++;
        LEAVE(r, fail(ERROR_INVALID_PARAMETER));
      }
      const char *st = buf ? (const char *)buf : "200 OK";
      const char *hd = (const char *)type;
      record_headers(r, st, strlen(st), hd, hd ? strlen(hd) : 0, -1);
      LEAVE(r, TRUE);
    }

    case HSE_REQ_IS_KEEP_CONN:
      if (!buf) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
      *(BOOL *)buf = r->keep_conn ? TRUE : FALSE;
      LEAVE(r, TRUE);

    case HSE_REQ_IS_CONNECTED:
      if (!buf) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
      *(BOOL *)buf = client_connected(r) ? TRUE : FALSE;
      LEAVE(r, TRUE);

    case HSE_REQ_ASYNC_READ_CLIENT: {
      if (!buf || !size || !type || !(*type & HSE_IO_ASYNC)) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
      LEAVE(r, start_async(r, OP_READ, buf, *size));
    }

    case HSE_REQ_CLOSE_CONNECTION:
      r->closed = 1;
      if (r->op && r->op->kind == OP_READ) {
        /* Complete the pending read at once with ERROR_NETNAME_DELETED, from the I/O thread. */
        r->op->cancelled = 1;
        mutex_lock(&r->run->mu);
        r->op->due_us = 0;
        cond_broadcast(&r->run->cv);
        mutex_unlock(&r->run->mu);
      }
      LEAVE(r, TRUE);

    case HSE_REQ_SET_FLUSH_FLAG:
      /* A BOOL by value in the pointer slot (ISAPI.md §7.2). */
      r->flush_flag = buf != NULL;
      LEAVE(r, TRUE);

    case HSE_REQ_REPORT_UNHEALTHY: {
      const char *why = buf ? (const char *)buf : "";
      strlist_add(&r->unhealthy, why, strlen(why));
      LEAVE(r, TRUE);
    }

    case HSE_APPEND_LOG_PARAMETER: {
      if (!buf) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
      const char *s = (const char *)buf;
      size_t n = size && *size ? bounded_strlen(s, *size) : strlen(s);
      strlist_add(&r->log_params, s, n);
      LEAVE(r, TRUE);
    }

    case HSE_REQ_SEND_URL_REDIRECT_RESP:
    case HSE_REQ_SEND_URL: {
      if (!buf) LEAVE(r, fail(ERROR_INVALID_PARAMETER));
      const char *url = (const char *)buf;
      free(r->redirect);
      r->redirect_len = (uint32_t)strlen(url);
      r->redirect = dup_bytes(url, r->redirect_len);
      LEAVE(r, TRUE);
    }

    case HSE_REQ_DONE_WITH_SESSION:
      r->done_count++;
      r->done_status = buf ? (int64_t) * (const DWORD *)buf : -1;
      end_session(r);
      LEAVE(r, TRUE);

    default:
      LEAVE(r, fail(ERROR_INVALID_PARAMETER));
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Running                                                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct {
  run_t *run;
  int32_t index;
} worker_arg_t;

/* The loader's own answer when it must not call JS: a complete 503 through the ECB's functions, then DONE, exactly
 * what the library's respondDirect does. Returns what the loader's HttpExtensionProc returns. */
static const char k_refuse_status[] = "503 Service Unavailable";
static const char k_refuse_headers[] = "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\nRetry-After: 1\r\n\r\n";
static const char k_refuse_body[] = "Service Unavailable\n";
static const char k_refuse_log[] = "isapi-loader: not accepting";

static DWORD loader_refuse(EXTENSION_CONTROL_BLOCK *ecb) {
  HSE_SEND_HEADER_EX_INFO info;
  info.pszStatus = k_refuse_status;
  info.pszHeader = k_refuse_headers;
  info.cchStatus = (DWORD)(sizeof k_refuse_status - 1);
  info.cchHeader = (DWORD)(sizeof k_refuse_headers - 1);
  info.fKeepConn = FALSE;
  ecb->dwHttpStatusCode = 503;
  memcpy(ecb->lpszLogData, k_refuse_log, sizeof k_refuse_log);
  if (ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &info, NULL, NULL)) {
    DWORD n = (DWORD)(sizeof k_refuse_body - 1);
    ecb->WriteClient(ecb->ConnID, (void *)k_refuse_body, &n, 0);
  }
  DWORD status = HSE_STATUS_SUCCESS;
  /* DONE failed: the session is not ours to end; HSE_STATUS_ERROR lets the server end it. */
  return ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_DONE_WITH_SESSION, &status, NULL, NULL) ? HSE_STATUS_PENDING : HSE_STATUS_ERROR;
}

static void call_proc(run_t *run, hreq_t *r, int32_t worker) {
  mutex_lock(&r->mu);
  r->issue_ns = now_ns();
  r->proc_tid = current_tid();
  r->proc_worker = worker;
  mutex_unlock(&r->mu);
  DWORD result;
  gate_t *g = run->gate;
  int why = REFUSED_NONE;
  if (!g) {
    result = run->proc(&r->ecb);
  } else if (gate_enter(g, CALL_PROC, &why)) {
    mutex_lock(&r->mu);
    r->gate = g; /* the session is open at the gate until end_session */
    mutex_unlock(&r->mu);
    result = run->proc(&r->ecb);
    gate_leave(g);
  } else {
    mutex_lock(&r->mu);
    r->refused = why;
    mutex_unlock(&r->mu);
    result = loader_refuse(&r->ecb);
  }
  mutex_lock(&r->mu);
  r->proc_result = result;
  r->proc_return_us = now_us();
  if (result == HSE_STATUS_PENDING) r->pending = 1;
  else end_session(r);
  mutex_unlock(&r->mu);
}

/* Closed loop: wait for the session end (not its async I/O), up to the request's timeout from when its proc returned. */
static void wait_ended(hreq_t *r) {
  mutex_lock(&r->mu);
  uint64_t deadline = r->proc_return_us + (uint64_t)r->timeout_ms * 1000u;
  while (!r->ended) {
    if (now_us() >= deadline) {
      r->timed_out = 1;
      end_session(r);
      break;
    }
    cond_wait_until(&r->cv, &r->mu, deadline);
  }
  mutex_unlock(&r->mu);
}

static THREAD_RET proc_thread(void *arg) {
  worker_arg_t *w = (worker_arg_t *)arg;
  run_t *run = w->run;
  for (;;) {
    mutex_lock(&run->mu);
    uint32_t i = run->next < run->n ? run->next++ : run->n;
    mutex_unlock(&run->mu);
    if (i >= run->n) break;
    if (run->interval_us) sleep_us(run->interval_us);
    call_proc(run, run->reqs[i], w->index);
    if (run->flags & HOST_RUN_CLOSED_LOOP) wait_ended(run->reqs[i]);
  }
  return THREAD_RET_VALUE;
}

/* Wait for the session end and then for the async I/O, up to the request's timeout from when its proc returned. */
static int wait_request(hreq_t *r) {
  mutex_lock(&r->mu);
  uint64_t deadline = r->proc_return_us + (uint64_t)r->timeout_ms * 1000u;
  while (!r->ended || r->op || r->io_inflight) {
    if (now_us() >= deadline) {
      r->timed_out = 1;
      end_session(r);
      break;
    }
    cond_wait_until(&r->cv, &r->mu, deadline);
  }
  int timed_out = r->timed_out;
  mutex_unlock(&r->mu);
  return timed_out;
}

/**
 * Run `n` requests (handles from host_request_new) through `proc` from `threads` host threads (0 = the calling
 * thread), with `io_threads` I/O threads (0 = 2). Every call into JS goes through `gate` (NULL = none: the proc is
 * called directly); each host thread pauses `interval_us` before each request. Blocks until every request ended
 * and its async I/O drained, or timed out. Returns the number of requests that timed out, or -1 on a setup error.
 */
HOST_EXPORT int32_t host_run_opts(void *gate, void *proc, void *const *reqs, uint32_t n, uint32_t threads, uint32_t io_threads, uint32_t interval_us, uint32_t flags) {
  if (!proc || (n && !reqs)) return -1;
  if (gate && !gate_of(gate)) return -1;
  if (flags & ~HOST_RUN_CLOSED_LOOP) return -1;
  run_t run;
  memset(&run, 0, sizeof run);
  run.gate = (gate_t *)gate;
  run.interval_us = interval_us;
  run.flags = flags;
  run.proc = (PFN_HTTPEXTENSIONPROC)proc;
  run.reqs = (hreq_t **)reqs;
  run.n = n;
  mutex_init(&run.mu);
  cond_init(&run.cv);
  for (uint32_t i = 0; i < n; i++) {
    hreq_t *r = run.reqs[i];
    if (!r || r->magic != REQ_MAGIC || r->run || r->proc_result != -1) return -1;
  }
  for (uint32_t i = 0; i < n; i++) run.reqs[i]->run = &run;

  if (!io_threads) io_threads = 2;
  host_thread_t *io = (host_thread_t *)calloc(io_threads, sizeof(host_thread_t));
  uint32_t io_started = 0;
  for (; io && io_started < io_threads; io_started++) {
    if (thread_start(&io[io_started], io_thread, &run) != 0) break;
  }

  if (threads == 0) {
    worker_arg_t w = {&run, 0};
    proc_thread(&w);
  } else {
    host_thread_t *t = (host_thread_t *)calloc(threads, sizeof(host_thread_t));
    worker_arg_t *args = (worker_arg_t *)calloc(threads, sizeof(worker_arg_t));
    uint32_t started = 0;
    for (; t && args && started < threads; started++) {
      args[started].run = &run;
      args[started].index = (int32_t)started;
      if (thread_start(&t[started], proc_thread, &args[started]) != 0) break;
    }
    if (started == 0) {
      worker_arg_t w = {&run, 0};
      proc_thread(&w);
    }
    for (uint32_t i = 0; i < started; i++) thread_join(t[i]);
    free(t);
    free(args);
  }

  int32_t timeouts = 0;
  for (uint32_t i = 0; i < n; i++) timeouts += wait_request(run.reqs[i]);

  mutex_lock(&run.mu);
  run.stopping = 1;
  cond_broadcast(&run.cv);
  mutex_unlock(&run.mu);
  for (uint32_t i = 0; i < io_started; i++) thread_join(io[i]);
  free(io);

  /* Ops still queued belong to timed-out requests whose completion never came: drop them. */
  while (run.queue) {
    io_op_t *op = run.queue;
    run.queue = op->next;
    mutex_lock(&op->req->mu);
    if (op->req->op == op) op->req->op = NULL;
    gate_t *g = op->req->gate;
    mutex_unlock(&op->req->mu);
    if (g) gate_ops(g, -1);
    free(op);
  }
  for (uint32_t i = 0; i < n; i++) {
    mutex_lock(&run.reqs[i]->mu);
    run.reqs[i]->run = NULL;
    mutex_unlock(&run.reqs[i]->mu);
  }
  mutex_destroy(&run.mu);
  cond_destroy(&run.cv);
  return timeouts;
}

/** host_run_opts without flags (open loop). */
HOST_EXPORT int32_t host_run_ex(void *gate, void *proc, void *const *reqs, uint32_t n, uint32_t threads, uint32_t io_threads, uint32_t interval_us) {
  return host_run_opts(gate, proc, reqs, n, threads, io_threads, interval_us, 0);
}

/** host_run_ex without a gate or pacing: the proc is called directly (the original API). */
HOST_EXPORT int32_t host_run(void *proc, void *const *reqs, uint32_t n, uint32_t threads, uint32_t io_threads) {
  return host_run_ex(NULL, proc, reqs, n, threads, io_threads, 0);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The loader's lifecycle: GetExtensionVersion, the gate's counters, TerminateExtension                          */
/* ------------------------------------------------------------------------------------------------------------ */

/**
 * A gate admitting at most `max_js_calls` (>= 1) concurrent calls into JS. `accepting` != 0 starts it ACCEPTING
 * (for drivers that hand a proc pointer without GetExtensionVersion); 0 starts it LOADED, where requests get the
 * native 503 until host_start_extension's GetExtensionVersion returns TRUE. Free it with host_gate_free once no
 * run, start or terminate uses it.
 */
HOST_EXPORT void *host_gate_new(uint32_t max_js_calls, int32_t accepting) {
  if (max_js_calls == 0) return NULL;
  gate_t *g = (gate_t *)calloc(1, sizeof(gate_t));
  if (!g) return NULL;
  g->magic = GATE_MAGIC;
  mutex_init(&g->mu);
  cond_init(&g->cv);
  cond_init(&g->cap_cv);
  g->max_js = max_js_calls;
  g->state = accepting ? GATE_ACCEPTING : GATE_LOADED;
  return g;
}

HOST_EXPORT void host_gate_free(void *gate) {
  gate_t *g = gate_of(gate);
  if (!g) return;
  g->magic = 0;
  mutex_destroy(&g->mu);
  cond_destroy(&g->cv);
  cond_destroy(&g->cap_cv);
  free(g);
}

enum {
  GS_STATE,                 /* GATE_*: 0 loaded, 1 accepting, 2 draining, 3 closing, 4 terminated */
  GS_MAX_JS,                /* the cap */
  GS_INFLIGHT,              /* calls into JS right now */
  GS_PEAK,                  /* the most calls into JS ever in flight at once */
  GS_PROC_CALLS,            /* HttpExtensionProc calls that entered JS */
  GS_COMPLETION_CALLS,      /* IO completion calls that entered JS */
  GS_START_CALLS,           /* GetExtensionVersion calls */
  GS_TERM_CALLS,            /* TerminateExtension calls */
  GS_CAP_WAITS,             /* calls that waited at the cap */
  GS_OPEN_SESSIONS,         /* sessions that entered JS and have not ended */
  GS_OPS,                   /* their async ops not yet completed */
  GS_REFUSED_NOT_STARTED,   /* requests answered natively before GetExtensionVersion */
  GS_REFUSED_DRAINING,      /* ... between host_terminate and the JS TerminateExtension */
  GS_REFUSED_TERMINATED,    /* ... after the JS TerminateExtension was called */
  GS_COMPLETIONS_REFUSED,   /* completions not delivered (CLOSING / TERMINATED) */
  GS_CALLS_AFTER_TERMINATE, /* trip-wire: calls into JS that entered once TERMINATED (must be 0) */
  GS_SESSIONS_OPENED,
  GS_COUNT
};

static int64_t gate_stat(const gate_t *g, uint32_t which) {
  switch (which) {
    case GS_STATE: return g->state;
    case GS_MAX_JS: return g->max_js;
    case GS_INFLIGHT: return g->inflight;
    case GS_PEAK: return g->peak;
    case GS_PROC_CALLS: return (int64_t)g->proc_calls;
    case GS_COMPLETION_CALLS: return (int64_t)g->completion_calls;
    case GS_START_CALLS: return (int64_t)g->start_calls;
    case GS_TERM_CALLS: return (int64_t)g->term_calls;
    case GS_CAP_WAITS: return (int64_t)g->cap_waits;
    case GS_OPEN_SESSIONS: return g->open_sessions;
    case GS_OPS: return g->ops;
    case GS_REFUSED_NOT_STARTED: return (int64_t)g->refused[REFUSED_NOT_STARTED];
    case GS_REFUSED_DRAINING: return (int64_t)g->refused[REFUSED_DRAINING];
    case GS_REFUSED_TERMINATED: return (int64_t)g->refused[REFUSED_TERMINATED];
    case GS_COMPLETIONS_REFUSED: return (int64_t)g->completions_refused;
    case GS_CALLS_AFTER_TERMINATE: return (int64_t)g->calls_after_terminate;
    case GS_SESSIONS_OPENED: return (int64_t)g->sessions_opened;
    default: return -1;
  }
}

/** The gate's counters (GS_*) into out[0..n-1], one consistent snapshot; returns GS_COUNT. Never waits on JS. */
HOST_EXPORT uint32_t host_gate_stats(void *gate, int64_t *out, uint32_t n) {
  gate_t *g = gate_of(gate);
  if (!g || !out) return 0;
  mutex_lock(&g->mu);
  for (uint32_t i = 0; i < n && i < GS_COUNT; i++) out[i] = gate_stat(g, i);
  mutex_unlock(&g->mu);
  return GS_COUNT;
}

/** Block until counter `which` reaches `value` or `timeout_ms` passes (0 = 30 s); returns the counter. (.async) */
HOST_EXPORT int64_t host_gate_wait(void *gate, uint32_t which, int64_t value, uint32_t timeout_ms) {
  gate_t *g = gate_of(gate);
  if (!g || which >= GS_COUNT) return -1;
  uint64_t deadline = now_us() + (uint64_t)(timeout_ms ? timeout_ms : 30000) * 1000u;
  mutex_lock(&g->mu);
  /* gate_leave broadcasts after every call, so call counters are seen at most one call late. */
  while (gate_stat(g, which) < value && now_us() < deadline) cond_wait_until(&g->cv, &g->mu, deadline);
  int64_t v = gate_stat(g, which);
  mutex_unlock(&g->mu);
  return v;
}

/**
 * The loader's GetExtensionVersion: call the JS one (through the gate, from this thread: use .async) with a
 * zeroed HSE_VERSION_INFO, copy out what it wrote, and start ACCEPTING if it returned TRUE. Returns 1/0 (its
 * BOOL), or -1 when the gate refused (already terminating) or on bad arguments.
 */
HOST_EXPORT int32_t host_start_extension(void *gate, void *gev, uint32_t *version, char *desc, uint32_t desc_len) {
  gate_t *g = gate_of(gate);
  if (!g || !gev) return -1;
  if (!gate_enter(g, CALL_START, NULL)) return -1;
  HSE_VERSION_INFO info;
  memset(&info, 0, sizeof info);
  BOOL ok = ((PFN_GETEXTENSIONVERSION)gev)(&info);
  gate_leave(g);
  if (version) *version = info.dwExtensionVersion;
  if (desc && desc_len) {
    size_t n = bounded_strlen(info.lpszExtensionDesc, sizeof info.lpszExtensionDesc);
    if (n > desc_len - 1) n = desc_len - 1;
    memcpy(desc, info.lpszExtensionDesc, n);
    desc[n] = 0;
  }
  if (ok) {
    mutex_lock(&g->mu);
    if (g->state == GATE_LOADED) gate_set_state(g, GATE_ACCEPTING);
    mutex_unlock(&g->mu);
  }
  return ok ? 1 : 0;
}

enum {
  TR_DRAINED,              /* 1: in flight 0, sessions ended and ops completed before timeout_ms */
  TR_TERM_CALLED,          /* 1: the JS TerminateExtension was called (0: JS never returned its calls) */
  TR_TERM_RESULT,          /* its BOOL, -1 if not called */
  TR_INFLIGHT_AT_STOP,     /* calls into JS in flight when accepting stopped */
  TR_OPEN_AT_STOP,         /* sessions open when accepting stopped */
  TR_OPEN_AT_TERMINATE,    /* sessions still open when TerminateExtension was called (0 when drained) */
  TR_DRAIN_US,             /* stop → TERMINATED */
  TR_TERM_US,              /* time inside the JS TerminateExtension */
  TR_REFUSED_WHILE_DRAINING, /* requests answered natively between stop and TERMINATED */
  TR_COUNT
};

/**
 * The loader's TerminateExtension (see the header): stop accepting, drain, then call the JS TerminateExtension
 * once from this thread (use .async: the JS thread must stay free to run the calls being drained). Fills
 * out[0..n-1] (TR_*). Returns 0, -1 on bad arguments, -2 when terminate already ran (once per gate).
 */
HOST_EXPORT int32_t host_terminate(void *gate, void *term_fn, uint32_t flags, uint32_t timeout_ms, int64_t *out, uint32_t n) {
  gate_t *g = gate_of(gate);
  if (!g) return -1;
  int64_t v[TR_COUNT];
  memset(v, 0, sizeof v);
  v[TR_TERM_RESULT] = -1;
  uint64_t t0 = now_us();
  uint64_t span = (uint64_t)(timeout_ms ? timeout_ms : 30000) * 1000u;
  mutex_lock(&g->mu);
  if (g->state >= GATE_DRAINING) {
    mutex_unlock(&g->mu);
    return -2;
  }
  /* 1. Stop accepting. Host threads waiting at the cap wake up and, being procs, are refused. */
  gate_set_state(g, GATE_DRAINING);
  v[TR_INFLIGHT_AT_STOP] = g->inflight;
  v[TR_OPEN_AT_STOP] = g->open_sessions;
  uint64_t refused_before = g->refused[REFUSED_DRAINING];
  /* 2. Drain: calls into JS return, sessions end (their completions are still delivered), async ops finish. */
  uint64_t deadline = t0 + span;
  while ((g->inflight || g->open_sessions || g->ops) && now_us() < deadline) cond_wait_until(&g->cv, &g->mu, deadline);
  v[TR_DRAINED] = !(g->inflight || g->open_sessions || g->ops);
  v[TR_OPEN_AT_TERMINATE] = g->open_sessions;
  /* 3. Refuse everything new (completions too) and let the calls still inside JS come back. */
  gate_set_state(g, GATE_CLOSING);
  deadline = now_us() + span;
  while (g->inflight && now_us() < deadline) cond_wait_until(&g->cv, &g->mu, deadline);
  int call = g->inflight == 0;
  /* 4. TERMINATED before the call: from here on nothing but this one call enters JS. */
  if (call) {
    gate_set_state(g, GATE_TERMINATED);
    if (term_fn) g->term_calls++;
  }
  v[TR_REFUSED_WHILE_DRAINING] = (int64_t)(g->refused[REFUSED_DRAINING] - refused_before);
  v[TR_DRAIN_US] = (int64_t)(now_us() - t0);
  mutex_unlock(&g->mu);
  if (call && term_fn) {
    uint64_t t1 = now_us();
    BOOL ok = ((PFN_TERMINATEEXTENSION)term_fn)(flags);
    v[TR_TERM_US] = (int64_t)(now_us() - t1);
    v[TR_TERM_CALLED] = 1;
    v[TR_TERM_RESULT] = ok ? 1 : 0;
  }
  if (out) {
    for (uint32_t i = 0; i < n && i < TR_COUNT; i++) out[i] = v[i];
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Results                                                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

enum {
  RB_STATUS,   /* pszStatus as sent, NULL if headers were never sent */
  RB_HEADERS,  /* pszHeader as sent */
  RB_BODY,     /* every byte written */
  RB_LOG_DATA, /* lpszLogData when the session ended */
  RB_REDIRECT, /* SEND_URL_REDIRECT_RESP's URL, NULL if none */
};

/** Bytes of a recorded field and their length; NULL when absent. Valid until host_request_free. */
HOST_EXPORT const void *host_result_bytes(void *req, uint32_t which, uint32_t *len) {
  hreq_t *r = (hreq_t *)req;
  const void *p = NULL;
  uint32_t n = 0;
  if (r) {
    switch (which) {
      case RB_STATUS:
        p = r->headers_sent ? r->status : NULL;
        n = r->status_len;
        break;
      case RB_HEADERS:
        p = r->headers_sent ? r->headers : NULL;
        n = r->headers_len;
        break;
      case RB_BODY:
        p = r->out.data ? (const void *)r->out.data : (const void *)"";
        n = (uint32_t)r->out.len;
        break;
      case RB_LOG_DATA:
        p = r->log_data;
        n = r->log_data_len;
        break;
      case RB_REDIRECT:
        p = r->redirect;
        n = r->redirect_len;
        break;
      default: break;
    }
  }
  if (len) *len = p ? n : 0;
  return p;
}

enum {
  RI_KEEP_CONN,      /* fKeepConn as sent, -1 if not sent */
  RI_HTTP_STATUS,    /* dwHttpStatusCode when the session ended */
  RI_DONE_STATUS,    /* the DWORD given to DONE_WITH_SESSION, -1 for NULL or never */
  RI_DONE_COUNT,
  RI_PROC_RESULT,    /* HttpExtensionProc's return value, -1 if it never ran */
  RI_CLOSED,
  RI_FLUSH_FLAG,
  RI_V_USE_AFTER_DONE,
  RI_V_ASYNC_OVERLAP,
  RI_V_HEADERS_TWICE,
  RI_V_DONE_TWICE,
  RI_TIMED_OUT,
  RI_PROC_TID,       /* OS thread id that ran the proc */
  RI_PROC_WORKER,    /* index of the host thread that ran the proc */
  RI_COMPLETION_TID, /* OS thread id of the last completion call, 0 if none */
  RI_COMPLETIONS,    /* how many completion calls were made */
  RI_BODY_READ,      /* body bytes delivered (read-ahead included) */
  RI_REFUSED,        /* REFUSED_*: 0 = the proc entered JS (or no gate); else answered natively with 503 */
  RI_DROPPED,        /* 1 when the drop_after kill switch fired */
  RI_COMPLETIONS_REFUSED, /* completions the gate did not deliver (CLOSING / TERMINATED) */
  RI_ISSUE_NS,       /* now_ns when a host thread took the request, before the gate and the proc; 0 if never */
  RI_END_NS,         /* now_ns when the session ended (DONE_WITH_SESSION, non-PENDING return, timeout); 0 if never */
};

HOST_EXPORT int64_t host_result_int(void *req, uint32_t which) {
  hreq_t *r = (hreq_t *)req;
  if (!r) return -1;
  mutex_lock(&r->mu);
  int64_t v = -1;
  switch (which) {
    case RI_KEEP_CONN: v = r->keep_conn_sent < 0 ? -1 : (r->keep_conn_sent != 0); break;
    case RI_HTTP_STATUS: v = r->http_status; break;
    case RI_DONE_STATUS: v = r->done_status; break;
    case RI_DONE_COUNT: v = r->done_count; break;
    case RI_PROC_RESULT: v = r->proc_result; break;
    case RI_CLOSED: v = r->closed; break;
    case RI_FLUSH_FLAG: v = r->flush_flag; break;
    case RI_V_USE_AFTER_DONE: v = r->violations[V_USE_AFTER_DONE]; break;
    case RI_V_ASYNC_OVERLAP: v = r->violations[V_ASYNC_OVERLAP]; break;
    case RI_V_HEADERS_TWICE: v = r->violations[V_HEADERS_TWICE]; break;
    case RI_V_DONE_TWICE: v = r->violations[V_DONE_TWICE]; break;
    case RI_TIMED_OUT: v = r->timed_out; break;
    case RI_PROC_TID: v = (int64_t)r->proc_tid; break;
    case RI_PROC_WORKER: v = r->proc_worker; break;
    case RI_COMPLETION_TID: v = (int64_t)r->completion_tid; break;
    case RI_COMPLETIONS: v = r->completions; break;
    case RI_BODY_READ: v = r->read_pos; break;
    case RI_REFUSED: v = r->refused; break;
    case RI_DROPPED: v = r->dropped; break;
    case RI_COMPLETIONS_REFUSED: v = r->completions_refused; break;
    case RI_ISSUE_NS: v = (int64_t)r->issue_ns; break;
    case RI_END_NS: v = (int64_t)r->end_ns; break;
    default: break;
  }
  mutex_unlock(&r->mu);
  return v;
}

enum { RL_UNHEALTHY, RL_LOG_PARAMS };

HOST_EXPORT uint32_t host_result_list_count(void *req, uint32_t which) {
  hreq_t *r = (hreq_t *)req;
  if (!r) return 0;
  return which == RL_UNHEALTHY ? r->unhealthy.count : which == RL_LOG_PARAMS ? r->log_params.count : 0;
}

HOST_EXPORT const void *host_result_list_item(void *req, uint32_t which, uint32_t i, uint32_t *len) {
  hreq_t *r = (hreq_t *)req;
  const strlist_t *l = !r ? NULL : which == RL_UNHEALTHY ? &r->unhealthy : which == RL_LOG_PARAMS ? &r->log_params : NULL;
  if (!l || i >= l->count) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = l->lens[i];
  return l->items[i];
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Layout probe and pinning                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

/** sizeof and the offsets of the ECB fields, in declaration order (17 fields): out[0] = size, out[1..17] = offsets. */
HOST_EXPORT uint32_t host_ecb_layout(uint32_t *out, uint32_t n) {
  const uint32_t v[] = {
      (uint32_t)sizeof(EXTENSION_CONTROL_BLOCK),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, cbSize),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, dwVersion),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, ConnID),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, dwHttpStatusCode),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, lpszLogData),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, lpszMethod),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, lpszQueryString),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, lpszPathInfo),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, lpszPathTranslated),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, cbTotalBytes),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, cbAvailable),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, lpbData),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, lpszContentType),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, GetServerVariable),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, WriteClient),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, ReadClient),
      (uint32_t)offsetof(EXTENSION_CONTROL_BLOCK, ServerSupportFunction),
  };
  uint32_t count = (uint32_t)(sizeof v / sizeof v[0]);
  for (uint32_t i = 0; i < n && i < count; i++) out[i] = v[i];
  return count;
}

static int g_pinned;

/** 1 when the library pinned itself so it can never be unloaded under running host threads (koffi.md 3c). */
HOST_EXPORT int32_t host_pinned(void) { return g_pinned; }

#if defined(PIN_SELF)
#ifdef _WIN32
BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved) {
  (void)inst;
  (void)reserved;
  if (reason == DLL_PROCESS_ATTACH) {
    HMODULE self;
    g_pinned = GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN, (LPCWSTR)(void *)&host_pinned, &self) ? 1 : 0;
  }
  return TRUE;
}
#else
__attribute__((constructor)) static void pin_self(void) {
  Dl_info info;
  if (dladdr((void *)&host_pinned, &info) && info.dli_fname) {
    /* RTLD_NOLOAD: take a reference on the copy already loaded; RTLD_NODELETE: never unmap it. */
    g_pinned = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL;
  }
}
#endif
#endif
