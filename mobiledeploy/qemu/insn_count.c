/*
 * insn_count: exact guest instruction counts between marker syscalls, for QEMU user mode.
 *
 * Every translation block gets an inline "add its instruction count" on execution, so the total is
 * exact and costs no helper call. The guest brackets what it wants measured with a syscall of an
 * unused number (`marker=`, default 0x4d44); at each one the plugin appends a line to `out=`:
 *
 *   M <a1> <a2> <instructions so far> <vCPUs seen> <of them in the main executable>
 *
 * The instructions of the block that issues the syscall are already counted, so the difference of
 * two markers is everything from after the first syscall up to and including the second. The last
 * field counts the blocks inside the main executable's code (qemu_plugin_start_code/end_code): for a
 * Python guest that is the interpreter itself (Debian links libpython into it), whose bytecode
 * specialisation and allocator make its share of a bracket vary by ~100-1500 instructions from one
 * call to the next. The host subtracts it, so a count is the model's work alone and repeats exactly.
 * With `profile=1` every block also counts its own executions; a marker with a1 = 2 starts a window
 * and a1 = 3 ends it, writing one line per block that ran inside it:
 *
 *   P <guest address, hex> <instructions in the block> <executions in the window>
 *
 * At exit: `E <instructions> <vCPUs seen> <in the main executable>`. Counts are summed over threads without atomics, so the
 * guest runs one thread (the vCPU count is reported so the host can refuse a run that did not).
 */
#include <inttypes.h>
#include <pthread.h>

#include "plugin_io.h"
#include "qemu_plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

struct block {
    uint64_t vaddr;
    uint64_t n_insns;
    uint64_t execs;   /* incremented inline by the guest's execution of this block */
    uint64_t base;    /* execs when the profile window opened */
};

static uint64_t total;
static uint64_t in_main;               /* the part of `total` executed inside the main executable */
static uint64_t main_lo, main_hi;      /* its code range, known once the loader has run */
static unsigned vcpus;
static int out_fd = -1;
static int64_t marker = 0x4d44;
static int profile;

static struct block **table;
static size_t table_cap, table_len;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static void emit(const char *text)
{
    write_all(out_fd, text, strlen(text));
}

static size_t slot_of(uint64_t vaddr, size_t cap)
{
    uint64_t h = vaddr * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static void table_grow(void)
{
    size_t cap = table_cap ? table_cap * 2 : 1 << 16;
    struct block **next = calloc(cap, sizeof *next);
    if (!next) {
        abort();
    }
    for (size_t i = 0; i < table_cap; i++) {
        if (table[i]) {
            size_t s = slot_of(table[i]->vaddr, cap);
            while (next[s]) {
                s = (s + 1) & (cap - 1);
            }
            next[s] = table[i];
        }
    }
    free(table);
    table = next;
    table_cap = cap;
}

/* The block record for a guest address; a re-translated block keeps counting into the same one. */
static struct block *block_for(uint64_t vaddr, uint64_t n_insns)
{
    if ((table_len + 1) * 10 > table_cap * 7) {
        table_grow();
    }
    size_t s = slot_of(vaddr, table_cap);
    while (table[s]) {
        if (table[s]->vaddr == vaddr && table[s]->n_insns == n_insns) {
            return table[s];
        }
        s = (s + 1) & (table_cap - 1);
    }
    struct block *b = calloc(1, sizeof *b);
    if (!b) {
        abort();
    }
    b->vaddr = vaddr;
    b->n_insns = n_insns;
    table[s] = b;
    table_len++;
    return b;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t n = qemu_plugin_tb_n_insns(tb);
    uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &total, n);
    if (main_hi == 0) {
        main_lo = qemu_plugin_start_code();
        main_hi = qemu_plugin_end_code();
    }
    if (vaddr >= main_lo && vaddr < main_hi) {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &in_main, n);
    }
    if (profile) {
        pthread_mutex_lock(&table_lock);
        struct block *b = block_for(vaddr, n);
        pthread_mutex_unlock(&table_lock);
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->execs, 1);
    }
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    __atomic_add_fetch(&vcpus, 1, __ATOMIC_SEQ_CST);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num != marker) {
        return;
    }
    uint64_t now = total, now_main = in_main;
    char line[160];
    snprintf(line, sizeof line, "M %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %" PRIu64 "\n", a1, a2, now, vcpus,
             now_main);
    emit(line);
    if (!profile || (a1 != MARK_PROFILE_BEGIN && a1 != MARK_PROFILE_END)) {
        return;
    }
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < table_cap; i++) {
        struct block *b = table[i];
        if (!b) {
            continue;
        }
        if (a1 == MARK_PROFILE_BEGIN) {
            b->base = b->execs;
        } else if (b->execs > b->base) {
            snprintf(line, sizeof line, "P %" PRIx64 " %" PRIu64 " %" PRIu64 "\n", b->vaddr, b->n_insns,
                     b->execs - b->base);
            emit(line);
        }
    }
    pthread_mutex_unlock(&table_lock);
}

static void on_exit_cb(qemu_plugin_id_t id, void *userdata)
{
    char line[128];
    snprintf(line, sizeof line, "E %" PRIu64 " %u %" PRIu64 "\n", total, vcpus, in_main);
    emit(line);
    close(out_fd);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info, int argc,
                                           char **argv)
{
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (common_arg(argv[i], &out, &marker)) {
            continue;
        } else if (strncmp(argv[i], "profile=", 8) == 0) {
            profile = atoi(argv[i] + 8);
        } else {
            fprintf(stderr, "insn_count: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    out_fd = open_out(out, "insn_count");
    if (out_fd < 0) {
        return -1;
    }
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
