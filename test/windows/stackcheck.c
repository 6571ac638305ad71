/*
 * stackcheck.dll (i686 only): measures what a callee does to the caller's stack, to prove that every callback
 * isapi-http hands to IIS is really __stdcall on ia32 (ISAPI.md §1, §13 item 4: "a cdecl callback corrupts the
 * stack on the first call").
 *
 * sc_invoke pushes n 32-bit arguments right to left, calls fn as a WINAPI caller does (no cleanup afterwards),
 * and returns ESP(after) - ESP(before the pushes): 0 when the callee popped its arguments (__stdcall), -4n when it
 * did not (cdecl). It then restores ESP itself, so a wrong callee is measured, not fatal.
 *
 * Build: i686-w64-mingw32-gcc -O2 -shared -std=gnu11 -Wall -Wextra -Werror -static-libgcc -Wl,--kill-at
 *        -o stackcheck-ia32.dll stackcheck.c          (scripts/windows/run.sh)
 * Exports (cdecl): sc_call, sc_call_on_thread (call it through koffi's .async: the thread's callback is relayed to
 * the JS thread, which must stay free), sc_stats; and two native references, sc_native_stdcall4 and
 * sc_native_cdecl4, that show the measure itself is right.
 */
#if !defined(__i386__)
#error "stackcheck.c is for i686 only: x64 has a single calling convention"
#endif
#include <windows.h>
#include <stdint.h>

#define SC_EXPORT __declspec(dllexport)

int32_t sc_invoke(void *fn, const uint32_t *args, uint32_t n, uint32_t *ret);
__asm__(
    ".text\n"
    ".globl _sc_invoke\n"
    "_sc_invoke:\n"
    "  pushl %ebp\n"
    "  movl %esp, %ebp\n"
    "  pushl %esi\n"
    "  pushl %edi\n"
    "  pushl %ebx\n"
    "  movl 8(%ebp), %eax\n"   /* fn */
    "  movl 12(%ebp), %esi\n"  /* args */
    "  movl 16(%ebp), %ecx\n"  /* n */
    "  movl %esp, %edi\n"      /* ESP before the pushes; EDI is callee-saved in both conventions */
    "1:\n"
    "  testl %ecx, %ecx\n"
    "  jz 2f\n"
    "  pushl -4(%esi,%ecx,4)\n" /* args[n-1] first: right to left */
    "  decl %ecx\n"
    "  jmp 1b\n"
    "2:\n"
    "  call *%eax\n"
    "  movl %esp, %ecx\n"
    "  subl %edi, %ecx\n"      /* delta = ESP after - ESP before */
    "  movl 20(%ebp), %edx\n"  /* ret */
    "  testl %edx, %edx\n"
    "  jz 3f\n"
    "  movl %eax, (%edx)\n"
    "3:\n"
    "  movl %ecx, %eax\n"
    "  movl %edi, %esp\n"      /* undo whatever the callee did to ESP */
    "  popl %ebx\n"
    "  popl %edi\n"
    "  popl %esi\n"
    "  popl %ebp\n"
    "  ret\n");

static volatile LONG g_calls, g_bad, g_last_delta;

static int32_t measured(void *fn, const uint32_t *args, uint32_t n, uint32_t *ret) {
  int32_t delta = sc_invoke(fn, args, n, ret);
  InterlockedIncrement(&g_calls);
  if (delta != 0) InterlockedIncrement(&g_bad);
  InterlockedExchange(&g_last_delta, delta);
  return delta;
}

/** Call fn(args[0..n-1]) on this thread; returns the ESP delta, *ret = its EAX. */
SC_EXPORT int32_t sc_call(void *fn, const uint32_t *args, uint32_t n, uint32_t *ret) {
  if (!fn || n > 16 || (n && !args)) return 0x7fffffff;
  return measured(fn, args, n, ret);
}

typedef struct {
  void *fn;
  uint32_t args[16];
  uint32_t n, ret;
  int32_t delta;
} thread_call_t;

static DWORD WINAPI call_thread(LPVOID p) {
  thread_call_t *c = (thread_call_t *)p;
  c->delta = measured(c->fn, c->args, c->n, &c->ret);
  return 0;
}

/** The same from a new Windows thread (CreateThread), as IIS's pool threads call: use koffi's .async. */
SC_EXPORT int32_t sc_call_on_thread(void *fn, const uint32_t *args, uint32_t n, uint32_t *ret) {
  if (!fn || n > 16 || (n && !args)) return 0x7fffffff;
  thread_call_t c;
  c.fn = fn;
  c.n = n;
  c.ret = 0;
  c.delta = 0x7fffffff;
  for (uint32_t i = 0; i < n; i++) c.args[i] = args[i];
  HANDLE t = CreateThread(NULL, 0, call_thread, &c, 0, NULL);
  if (!t) return 0x7ffffffe;
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
  if (ret) *ret = c.ret;
  return c.delta;
}

/** out[0] = calls measured, out[1] = calls with a non-zero delta, out[2] = the last delta. */
SC_EXPORT void sc_stats(int32_t *out) {
  out[0] = g_calls;
  out[1] = g_bad;
  out[2] = g_last_delta;
}

/* Native references for the measure itself. */
SC_EXPORT uint32_t __stdcall sc_native_stdcall4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return a + b + c + d; }
SC_EXPORT uint32_t __cdecl sc_native_cdecl4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return a + b + c + d; }
