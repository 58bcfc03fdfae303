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
format::QuantizedWeight quantize_weight(const format::WeightView& w, const format::WeightQuantSpec& spec,
                                        core::ThreadPool* pool = nullptr);

// fp32 decode on the GPU: equals format::dequantize_weight bit for bit.
std::vector<float> dequantize_weight(const format::QuantizedWeight& q);

}  // namespace microscale::cuda
