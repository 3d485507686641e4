/*
 * block_cache: per-block executions, instruction bytes and simulated cache misses inside a profile window,
 * for the timing estimates of mobiledeploy.estimate. A second plugin loaded beside insn_count (which it never
 * changes: the exact counts and the gate's numbers come from insn_count alone).
 *
 * Arguments: out=PATH, marker=N (the same syscall number as insn_count's), l1=KiB, l2=KiB, l3=KiB (0 = no
 * such level), line=64. The guest opens the window with a marker of a1 = 2 and closes it with a1 = 3 (as for
 * insn_count's profile). At the close one line per block that ran inside the window:
 *
 *   X <main executable's code start, hex> <its end, hex>      (first: the host leaves those blocks out, as the counts do)
 *   B <guest address, hex> <instructions> <executions> <accesses> <L1 misses> <L2 misses> <L3 misses> <bytes, hex>
 *
 * A miss at the last level present is a line fetched from memory. The hierarchy is simulated per access
 * (every load and store the guest makes, as QEMU splits it), set-associative with LRU replacement, each
 * level looked up only on a miss of the one above (write-allocate, no prefetcher: what the model leaves out).
 * Counted without atomics: the guest runs one thread, as for insn_count.
 */
#include <inttypes.h>
#include <pthread.h>

#include "plugin_io.h"
#include "qemu_plugin_api.h"

/* More of QEMU 7.2's plugin API (include/qemu/qemu-plugin.h, API version 1), declared here so that the
 * counting plugin's header, part of the environment's digest, stays as it is. */
struct qemu_plugin_insn;
typedef uint32_t qemu_plugin_meminfo_t;
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                                          void *userdata);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw, void *userdata);
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

enum { LEVELS = 3, WAYS = 8 };

struct block {
    uint64_t vaddr, n_insns, n_bytes;
    uint64_t execs, accesses, misses[LEVELS];            /* inside the window only */
    unsigned char *bytes;
};

struct level {
    uint64_t sets;          /* 0: the level is absent */
    uint64_t *tags;         /* sets x WAYS, most recently used first; 0 = empty */
};

static struct level cache[LEVELS];
static unsigned line_shift = 6;
static int out_fd = -1, open_window;
static int64_t marker = 0x4d44;
static struct block **blocks;
static size_t n_blocks, cap_blocks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void emit(const char *text, size_t len)
{
    write_all(out_fd, text, len);
}

/* Looks `line` up in one level; returns 1 on a hit. Either way it ends up most recently used. */
static int touch(struct level *lv, uint64_t line)
{
    uint64_t *set = lv->tags + (line % lv->sets) * WAYS, tag = line + 1;
    int way = 0;
    while (way < WAYS - 1 && set[way] != tag) {
        way++;
    }
    int hit = set[way] == tag;
    memmove(set + 1, set, (size_t)way * sizeof *set);
    set[0] = tag;
    return hit;
}

static void access_line(struct block *b, uint64_t line)
{
    for (int i = 0; i < LEVELS; i++) {
        if (!cache[i].sets) {
            continue;
        }
        if (touch(&cache[i], line)) {
            return;
        }
        b->misses[i]++;
    }
}

static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata)
{
    if (!open_window) {
        return;
    }
    struct block *b = userdata;
    uint64_t size = 1ull << qemu_plugin_mem_size_shift(info);
    uint64_t first = vaddr >> line_shift, last = (vaddr + size - 1) >> line_shift;
    b->accesses++;
    for (uint64_t line = first; line <= last; line++) {
        access_line(b, line);
    }
}

static struct block *new_block(struct qemu_plugin_tb *tb)
{
    struct block *b = calloc(1, sizeof *b);
    if (!b) {
        abort();
    }
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->n_insns = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < b->n_insns; i++) {
        b->n_bytes += qemu_plugin_insn_size(qemu_plugin_tb_get_insn(tb, i));
    }
    b->bytes = malloc(b->n_bytes ? b->n_bytes : 1);
    if (!b->bytes) {
        abort();
    }
    for (size_t i = 0, at = 0; i < b->n_insns; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        size_t n = qemu_plugin_insn_size(insn);
        memcpy(b->bytes + at, qemu_plugin_insn_data(insn), n);
        at += n;
    }
    return b;
}

/* Every translation gets a record of its own (a re-translated block counts apart; the host sums by address). */
static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    struct block *b = new_block(tb);
    pthread_mutex_lock(&lock);
    if (n_blocks == cap_blocks) {
        cap_blocks = cap_blocks ? cap_blocks * 2 : 1 << 14;
        blocks = realloc(blocks, cap_blocks * sizeof *blocks);
        if (!blocks) {
            abort();
        }
    }
    blocks[n_blocks++] = b;
    pthread_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->execs, 1);
    for (size_t i = 0; i < b->n_insns; i++) {
        qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), on_mem, QEMU_PLUGIN_CB_NO_REGS,
                                         QEMU_PLUGIN_MEM_RW, b);
    }
}

static void dump_window(void)
{
    char range[80];
    int n = snprintf(range, sizeof range, "X %" PRIx64 " %" PRIx64 "\n", qemu_plugin_start_code(), qemu_plugin_end_code());
    emit(range, (size_t)n);
    for (size_t i = 0; i < n_blocks; i++) {
        struct block *b = blocks[i];
        if (!b->execs) {
            continue;
        }
        size_t len = 200 + 2 * b->n_bytes;
        char *line = malloc(len);
        if (!line) {
            abort();
        }
        int at = snprintf(line, len, "B %" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                          " %" PRIu64 " ", b->vaddr, b->n_insns, b->execs, b->accesses, b->misses[0], b->misses[1],
                          b->misses[2]);
        for (uint64_t j = 0; j < b->n_bytes; j++) {
            at += snprintf(line + at, len - (size_t)at, "%02x", b->bytes[j]);
        }
        line[at++] = '\n';
        emit(line, (size_t)at);
        free(line);
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num != marker || (a1 != MARK_PROFILE_BEGIN && a1 != MARK_PROFILE_END)) {
        return;
    }
    pthread_mutex_lock(&lock);
    if (a1 == MARK_PROFILE_BEGIN) {
        for (size_t i = 0; i < n_blocks; i++) {
            blocks[i]->execs = blocks[i]->accesses = 0;
            memset(blocks[i]->misses, 0, sizeof blocks[i]->misses);
        }
        open_window = 1;
    } else {
        open_window = 0;
        dump_window();
    }
    pthread_mutex_unlock(&lock);
}

static int make_level(struct level *lv, uint64_t kib)
{
    uint64_t lines = (kib * 1024) >> line_shift;
    lv->sets = lines / WAYS;
    if (!lv->sets) {
        return 0;
    }
    lv->tags = calloc(lv->sets * WAYS, sizeof *lv->tags);
    return lv->tags ? 0 : -1;
}

static void on_exit_cb(qemu_plugin_id_t id, void *userdata)
{
    emit("E\n", 2);
    close(out_fd);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info, int argc,
                                           char **argv)
{
    const char *out = NULL;
    uint64_t kib[LEVELS] = {32, 1024, 0};
    for (int i = 0; i < argc; i++) {
        if (common_arg(argv[i], &out, &marker)) {
            continue;
        } else if (argv[i][0] == 'l' && argv[i][1] >= '1' && argv[i][1] <= '3' && argv[i][2] == '=') {
            kib[argv[i][1] - '1'] = strtoull(argv[i] + 3, NULL, 0);
        } else if (strncmp(argv[i], "line=", 5) == 0) {
            uint64_t bytes = strtoull(argv[i] + 5, NULL, 0);
            if (bytes < 8 || (bytes & (bytes - 1))) {
                fprintf(stderr, "block_cache: line=%s is not a power of two of at least 8\n", argv[i] + 5);
                return -1;
            }
            line_shift = (unsigned)__builtin_ctzll(bytes);
        } else {
            fprintf(stderr, "block_cache: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    for (int i = 0; i < LEVELS; i++) {
        if (make_level(&cache[i], kib[i]) != 0) {
            return -1;
        }
    }
    out_fd = open_out(out, "block_cache");
    if (out_fd < 0) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
