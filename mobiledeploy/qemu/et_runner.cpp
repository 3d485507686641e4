// The ExecuTorch guest of the emulated Arm64 runs: loads a .pte with ExecuTorch's C++ runtime (the aarch64
// libraries of the executorch wheel: libexecutorch, its XNNPACK backend and optimised/portable kernels, none of
// which needs libtorch) and brackets each phase with the marker syscall the insn_count plugin counts, as guest.py
// does for LiteRT: 3 empty brackets, init (program + method load: XNNPACK's graph is built then), first, warm-up,
// runs. Built with aarch64-linux-gnu-g++ by `mobiledeploy qemu setup` (qemu/executorch_env.py).
// Follows ExecuTorch's examples/portable/executor_runner/executor_runner.cpp (load, memory planning, inputs).
//
//   et_runner MODEL.pte RUNS WARMUP MARKER INPUTS.bin|- OUTPUTS.bin|-
// INPUTS.bin: float32 values of every input, in order (else seeded values); OUTPUTS.bin: the first output.
#include <executorch/extension/data_loader/buffer_data_loader.h>
#include <executorch/extension/threadpool/threadpool_guard.h>
#include <executorch/runtime/core/memory_allocator.h>
#include <executorch/runtime/core/hierarchical_allocator.h>
#include <executorch/runtime/executor/memory_manager.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/runtime.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::aten::TensorImpl;
using executorch::extension::BufferDataLoader;
using executorch::runtime::EValue;
using executorch::runtime::Error;
using executorch::runtime::HierarchicalAllocator;
using executorch::runtime::MemoryAllocator;
using executorch::runtime::MemoryManager;
using executorch::runtime::Method;
using executorch::runtime::Program;
using executorch::runtime::Span;

// ExecuTorch's global threadpool (extension/threadpool/threadpool.cpp; the wheel ships the library but not this
// header, so the two exported functions used are declared here as the library defines them).
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  bool _unsafe_reset_threadpool(uint32_t new_thread_count);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

static long g_marker = 0;
static void mark(long code, long arg) { syscall(g_marker, code, arg); }
static int fail(const char* what, int code) { std::fprintf(stderr, "et_runner: %s (error 0x%x)\n", what, code); return 3; }

struct Input {
  std::vector<float> data;
  std::vector<TensorImpl::SizesType> sizes;
  std::vector<TensorImpl::DimOrderType> dim_order;
  std::unique_ptr<TensorImpl> impl;
};

static int set_inputs(Method& method, const char* path, std::vector<Input>& inputs) {
  std::vector<float> given;
  if (std::string(path) != "-") {
    std::ifstream f(path, std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    given.resize(raw.size() / sizeof(float));
    std::copy(raw.begin(), raw.begin() + given.size() * sizeof(float), reinterpret_cast<char*>(given.data()));
  }
  auto meta = method.method_meta();
  size_t offset = 0;
  unsigned seed = 0;
  inputs.resize(meta.num_inputs());
  for (size_t i = 0; i < meta.num_inputs(); ++i) {
    auto info = meta.input_tensor_meta(i);
    if (!info.ok() || info->scalar_type() != ScalarType::Float) return fail("only float tensor inputs are fed", 0);
    Input& in = inputs[i];
    size_t numel = 1;
    for (auto s : info->sizes()) { in.sizes.push_back(s); numel *= s; }
    for (auto d : info->dim_order()) in.dim_order.push_back(d);
    in.data.resize(numel);
    for (size_t k = 0; k < numel; ++k) {
      seed = seed * 1103515245u + 12345u;
      in.data[k] = offset + k < given.size() ? given[offset + k] : ((seed >> 8) % 2001) / 1000.0f - 1.0f;
    }
    offset += numel;
    in.impl = std::make_unique<TensorImpl>(ScalarType::Float, in.sizes.size(), in.sizes.data(), in.data.data(),
                                           in.dim_order.data());
    Error err = method.set_input(EValue(Tensor(in.impl.get())), i);
    if (err != Error::Ok) return fail("set_input failed", (int)err);
  }
  return 0;
}

static void write_output(Method& method, const char* path) {
  if (std::string(path) == "-" || method.outputs_size() == 0) return;
  const EValue& out = method.get_output(0);
  if (!out.isTensor()) return;
  const Tensor& t = out.toTensor();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(t.const_data_ptr<float>()), t.numel() * sizeof(float));
}

int main(int argc, char** argv) {
  if (argc != 7) { std::fprintf(stderr, "usage: et_runner MODEL.pte RUNS WARMUP MARKER INPUTS|- OUTPUTS|-\n"); return 2; }
  const int runs = std::atoi(argv[2]), warmup = std::atoi(argv[3]);
  g_marker = std::atol(argv[4]);
  executorch::runtime::runtime_init();
  // one thread: no pthreadpool (XNNPACK then runs on the caller), so the plugin counts one guest thread
  executorch::extension::threadpool::NoThreadPoolGuard::set_enabled(true);
  // The first get_threadpool() (a kernel's parallel_for calls it even under the guard, then runs inline) probes
  // cpuinfo and starts a pool of one thread per core of the view (2: one worker). Left to the first execute(), the
  // worker's 13,132 instructions ran whenever the host scheduled it: in the first inference or, 5 processes in 40
  // beside a CPU hog, in the timed run after it (qemu -strace: the clone inside the first execute). Done here,
  // before any marker, and reset to one thread (pthreadpool then has no worker; the old one is joined), no phase
  // holds any of it: 30 processes of 30 counted the same in every phase.
  executorch::extension::threadpool::get_threadpool()->_unsafe_reset_threadpool(1);
  std::ifstream file(argv[1], std::ios::binary);
  std::vector<char> pte((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<uint8_t> method_pool(64 << 20), temp_pool(16 << 20);
  std::vector<std::vector<uint8_t>> planned;
  std::vector<Span<uint8_t>> spans;
  for (int i = 0; i < 3; ++i) { mark(1, 0); mark(1, 0); }
  mark(1, 1);
  BufferDataLoader loader(pte.data(), pte.size());
  auto program = Program::load(&loader, Program::Verification::Minimal);
  if (!program.ok()) return fail("the .pte does not load", (int)program.error());
  auto meta = program->method_meta("forward");
  if (!meta.ok()) return fail("the .pte has no forward method", (int)meta.error());
  for (size_t i = 0; i < meta->num_memory_planned_buffers(); ++i) {
    planned.emplace_back(static_cast<size_t>(meta->memory_planned_buffer_size(i).get()));
    spans.emplace_back(planned.back().data(), planned.back().size());
  }
  HierarchicalAllocator planned_memory({spans.data(), spans.size()});
  MemoryAllocator method_allocator(method_pool.size(), method_pool.data());
  MemoryAllocator temp_allocator(temp_pool.size(), temp_pool.data());
  MemoryManager memory(&method_allocator, &planned_memory, &temp_allocator);
  auto method = program->load_method("forward", &memory);
  mark(1, 1);
  if (!method.ok()) return fail("forward does not load", (int)method.error());
  std::vector<Input> inputs;
  if (int rc = set_inputs(*method, argv[5], inputs)) return rc;
  mark(1, 2);
  Error err = method->execute();
  mark(1, 2);
  if (err != Error::Ok) return fail("execute failed", (int)err);
  write_output(*method, argv[6]);
  for (int i = 0; i < warmup; ++i) { mark(1, 3); (void)method->execute(); mark(1, 3); }
  for (int i = 0; i < runs; ++i) { mark(1, 4); (void)method->execute(); mark(1, 4); }
  return 0;
}
