/*
 * simrun instruction counter: a QEMU TCG plugin (plugin API version 1, QEMU 7.2).
 *
 * Counts every guest instruction executed and, whenever execution reaches
 * one of the given marker addresses (the firmware's simrun_hook_op_begin /
 * simrun_hook_op_end / kernel-end functions), appends a record
 *     uint32 marker index, uint32 reserved (0), uint64 instructions executed before that instruction
 * (16 bytes, little-endian host order) to the output file. The host reads the
 * file after an inference and turns the records into per-operator counts
 * (simrun/device/cost.py). No firmware change and no stop per operator.
 *
 * Why counts are exact and deterministic: the count only depends on the guest's
 * instruction stream (the emulated CPU has no timing, and nothing the host
 * does between inferences runs guest code). Counting is per translation block
 * (one inline 64-bit add per executed block, the cheapest instrumentation
 * QEMU offers); a marker's callback runs after its block's add, so it
 * subtracts the instructions of the block from the marker on. That is exact
 * as long as a block is not left half-way, which on Cortex-M only happens on
 * a fault (the run ends there) because TCG takes interrupts between blocks.
 *
 * Arguments (-plugin insn_count.so,out=FILE,marks=ADDR[:ADDR...]):
 *   out    file to append records to (created/truncated at load)
 *   marks  up to 8 hexadecimal or decimal guest addresses, in marker-index order
 *
 * Built by simrun/device/cost.py against QEMU's own include/qemu/qemu-plugin.h,
 * taken from QEMU's source at the installed version (never committed here).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_MARKS 8

static uint64_t executed;           /* one vCPU (Cortex-M): no atomics needed */
static uint64_t marks[MAX_MARKS];
static unsigned mark_count;
static int out_fd = -1;

typedef struct {
  uint32_t mark;
  uint32_t reserved;
  uint64_t count;
} record_t;

/* udata: marker index in the low byte, instructions of the block from this one on above it. */
static void on_mark(unsigned int vcpu, void *udata) {
  (void)vcpu;
  uintptr_t u = (uintptr_t)udata;
  record_t r = {(uint32_t)(u & 0xFF), 0, executed - (uint64_t)(u >> 8)};
  /* One write per marker: the host may read the file while QEMU waits at a breakpoint. */
  ssize_t n = write(out_fd, &r, sizeof r);
  (void)n;  /* a full disk shows as missing records, which the host reports */
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
  for (size_t i = 0; i < n; ++i) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
    for (unsigned m = 0; m < mark_count; ++m) {
      if (vaddr == marks[m]) {
        uintptr_t udata = ((uintptr_t)(n - i) << 8) | m;
        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, (void *)udata);
      }
    }
  }
}

static int parse_marks(char *list) {
  char *save = NULL;
  for (char *tok = strtok_r(list, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
    if (mark_count == MAX_MARKS) return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(tok, &end, 0);
    if (errno || end == tok || *end) return -1;
    marks[mark_count++] = v;
  }
  return mark_count ? 0 : -1;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv) {
  (void)info;
  const char *out = NULL;
  for (int i = 0; i < argc; ++i) {
    if (strncmp(argv[i], "out=", 4) == 0) {
      out = argv[i] + 4;
    } else if (strncmp(argv[i], "marks=", 6) == 0) {
      if (parse_marks(argv[i] + 6) != 0) {
        fprintf(stderr, "simrun insn_count: bad marks=%s (1..%d addresses separated by ':')\n",
                argv[i] + 6, MAX_MARKS);
        return -1;
      }
    } else {
      fprintf(stderr, "simrun insn_count: unknown argument %s (known: out=, marks=)\n", argv[i]);
      return -1;
    }
  }
  if (!out || !mark_count) {
    fprintf(stderr, "simrun insn_count: needs out=FILE and marks=ADDR[:ADDR...]\n");
    return -1;
  }
  out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (out_fd < 0) {
    fprintf(stderr, "simrun insn_count: cannot open %s: %s\n", out, strerror(errno));
    return -1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
  return 0;
}
