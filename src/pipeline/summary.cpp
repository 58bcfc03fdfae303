// The quantize summary: time, sizes, effective bits per element per layer kind and overall (the
// Nemotron 3 Ultra report's BPE: stored bits of the linear weights over their element count),
// and the worst tensors by relative reconstruction error.
#include <fmt/core.h>

#include <algorithm>
#include <map>

#include "pipeline/quantize_job.h"
#include "pipeline/reconstruction.h"

namespace microscale::pipeline {

std::string summarize(const QuantizeReport& r) {
    std::string s;
    const double mib = 1024.0 * 1024.0;
    for (const std::string& n : r.notes) s += n + "\n";
    s += fmt::format("wrote {} in {:.2f} s: tensors {:.2f} s, writer drain {:.2f} s, fsync+rename {:.2f} s, "
                     "verify {:.2f} s\n",
                     r.output.string(), r.seconds, r.quantize_seconds, r.write_wait_seconds, r.commit_seconds,
                     r.verify_seconds);
    s += fmt::format("size: {:.2f} MiB -> {:.2f} MiB ({:.2f}x smaller), {:.1f} MB/s of input\n", double(r.input_bytes) / mib,
                     double(r.output_bytes) / mib, r.output_bytes ? double(r.input_bytes) / double(r.output_bytes) : 0.0,
                     r.seconds > 0 ? double(r.input_bytes) / 1e6 / r.seconds : 0.0);
    struct Acc { double bits = 0, elems = 0; int n = 0; };
    std::map<std::string, Acc> kinds;
    Acc all, all_no_head;
    for (const TensorReport& t : r.tensors) {
        if (t.kind == "other" || t.kind == "embedding") continue;  // linear weights only
        Acc& k = kinds[t.kind];
        k.bits += 8.0 * double(t.output_bytes);
        k.elems += double(t.elements);
        ++k.n;
        all.bits += 8.0 * double(t.output_bytes);
        all.elems += double(t.elements);
        if (t.kind != "lm_head") {
            all_no_head.bits += 8.0 * double(t.output_bytes);
            all_no_head.elems += double(t.elements);
        }
    }
    s += "effective bits per element (linear weights, as stored):\n";
    for (const auto& [kind, a] : kinds)
        s += fmt::format("  {:<10} {:>4} tensors  {:>7.3f} bits/elem\n", kind, a.n, a.elems ? a.bits / a.elems : 0.0);
    s += fmt::format("  overall    {:>7.3f} bits/elem without lm_head, {:.3f} with\n",
                     all_no_head.elems ? all_no_head.bits / all_no_head.elems : 0.0, all.elems ? all.bits / all.elems : 0.0);
    std::vector<const TensorReport*> q;
    for (const TensorReport& t : r.tensors)
        if (t.rel_mse >= 0) q.push_back(&t);
    std::sort(q.begin(), q.end(), [](auto* a, auto* b) { return a->rel_mse > b->rel_mse; });
    if (!q.empty()) {
        double sum = 0;
        for (auto* t : q) sum += t->rel_mse;
        s += fmt::format("reconstruction error (relative MSE on up to {} evenly spaced rows per tensor): mean {:.3e}; worst:\n",
                         kErrorRows, sum / double(q.size()));
        for (size_t i = 0; i < q.size() && i < 5; ++i)
            s += fmt::format("  {:.3e}  {} ({}, {})\n", q[i]->rel_mse, q[i]->name, q[i]->format, q[i]->algorithm);
    }
    return s;
}

}  // namespace microscale::pipeline
