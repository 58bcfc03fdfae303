// Whole-tensor weight quantization on the selected GPU: the same QuantizedWeight, byte for byte,
// as format::quantize_weight with the scalar reference (tests/gpu/ memcmp them). No CUDA headers.
#pragma once

#include <vector>

#include "format/quantize.h"

namespace microscale::core {
class ThreadPool;
}

namespace microscale::cuda {

// Copies the weight to the GPU, computes the amax (rejecting NaN/Inf with the reference's error),
// quantizes with the spec's format and search, and copies the result back. Host <-> device copies
// go through pinned staging buffers; with a pool, the host-side copies into and out of them run
// on its threads, chunk by chunk, overlapping the DMA of the previous chunk. Safe to call from
// several host threads (each has its own stream and buffers); do not call it from inside a task
// of the same pool.
// next (a hint): the weight this thread quantizes next. Once w's input is on the device, a
// background thread starts copying next's bytes into a second device buffer on a copy stream,
// overlapping w's kernels and result copies and whatever the caller does until its next call; a
// call for exactly those bytes then skips the upload. Other calls wait for and drop it. next's
// memory must stay mapped and unchanged until that call returns.
format::QuantizedWeight quantize_weight(const format::WeightView& w, const format::WeightQuantSpec& spec,
                                        core::ThreadPool* pool = nullptr, const format::WeightView* next = nullptr);

// Waits for this thread's prefetch (quantize_weight's `next`), if any, and drops it: call before
// unmapping the memory it reads when the next quantize_weight call will not come.
void wait_prefetch() noexcept;

// fp32 decode on the GPU: equals format::dequantize_weight bit for bit.
std::vector<float> dequantize_weight(const format::QuantizedWeight& q);

}  // namespace microscale::cuda
