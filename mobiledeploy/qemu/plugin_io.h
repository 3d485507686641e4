/*
 * What the two TCG plugins (insn_count.c, block_cache.c) share: the arguments both take (out=PATH, where their
 * lines go, else stderr; marker=N, the syscall number the guest brackets phases with) and writing those lines.
 */
#ifndef MOBILEDEPLOY_PLUGIN_IO_H
#define MOBILEDEPLOY_PLUGIN_IO_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Marker a1 codes that open and close a profile window (mobiledeploy/qemu/guest.py: PROFILE_BEGIN/END). */
enum { MARK_PROFILE_BEGIN = 2, MARK_PROFILE_END = 3 };

/* Takes `arg` when it is out= or marker= (returns 1), else leaves it to the plugin (returns 0). */
static int common_arg(const char *arg, const char **out, int64_t *marker)
{
    if (strncmp(arg, "out=", 4) == 0) {
        *out = arg + 4;
        return 1;
    }
    if (strncmp(arg, "marker=", 7) == 0) {
        *marker = strtoll(arg + 7, NULL, 0);
        return 1;
    }
    return 0;
}

/* The file the plugin writes its lines to (`out`, truncated; stderr when NULL); -1 after saying why. */
static int open_out(const char *out, const char *plugin)
{
    int fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : dup(2);
    if (fd < 0) {
        char what[64];
        snprintf(what, sizeof what, "%s: out", plugin);
        perror(what);
    }
    return fd;
}

/* All of `len` bytes of `text` (a short write is retried; a failed one ends the line). */
static void write_all(int fd, const char *text, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n <= 0) {
            return;
        }
        done += (size_t)n;
    }
}

#endif
