// et_profile: et_runner (et_runner.cpp, compiled in whole) with the counting plugin's profile window around every
// timed run and the guest's memory map written at exit, so that `profile=1` gives exact instructions per
// translation block of the timed runs, and the host names each block's function from the map
// (qemu/et_profile.py, qemu/profile.py). Built on demand by et_profile.py, beside (not instead of) et_runner:
// the timed runner stays what it is.
//
//   MD_MAPS=PATH et_profile MODEL.pte RUNS WARMUP MARKER INPUTS.bin|- OUTPUTS.bin|-
//
// How: et_runner's mark() calls syscall(); here that name is our wrapper, which adds marker a1 = 2 (window open)
// after a run's opening marker (1, 4) and a1 = 3 (window close) before its closing one. Markers and window are
// those of guest.py (a1 = 1 phase, 2/3 profile window; qemu/insn_count.c).
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

static long md_profiled_syscall(long number, long code, long arg);
#define syscall md_profiled_syscall
#include "et_runner.cpp"
#undef syscall

static int g_in_run = 0;

static long md_profiled_syscall(long number, long code, long arg) {
  const bool run_marker = code == 1 && arg == 4;
  if (run_marker && g_in_run) ::syscall(number, 3L, 0L);  // close the window before the run's closing marker
  long rc = ::syscall(number, code, arg);
  if (run_marker) {
    g_in_run = !g_in_run;
    if (g_in_run) ::syscall(number, 2L, 0L);  // open it after the run's opening marker
  }
  return rc;
}

__attribute__((destructor)) static void md_write_maps() {
  const char* path = std::getenv("MD_MAPS");
  if (path == nullptr) return;
  std::FILE* in = std::fopen("/proc/self/maps", "r");
  std::FILE* out = std::fopen(path, "w");
  char buf[4096];
  size_t n;
  while (in && out && (n = std::fread(buf, 1, sizeof buf, in)) > 0) std::fwrite(buf, 1, n, out);
  if (in) std::fclose(in);
  if (out) std::fclose(out);
}
